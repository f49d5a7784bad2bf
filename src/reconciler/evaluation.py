"""The evaluation harness: run one model spec over one stored dataset and record the run.

Input: an engine, the evaluated model (spec fields and identity hash), its
prompt template, a provider adapter and the dataset id. Steps: read the
examples, render one prompt per example, look the prompts up in the response
cache, send the misses to the provider concurrently (the adapter bounds the
requests in flight), cache the successful outputs, turn outputs into
decisions with the spec's thresholds, and store the run with its metrics.

A row whose provider call failed (timeout, refusal, truncated or malformed
output) is counted in `rows_failed`, listed with its line in the run's row
errors and left out of the metrics; it is never scored as "no labels".
Identical prompts are sent once per run. `q2q eval run` and
`POST /q2q/eval/run` call `run_evaluation`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from policies.eval_metrics import (
    OutputShapeError,
    ScoredRow,
    compute_metrics,
    decide_labels,
    result_rows,
)
from reconciler.providers import ProviderAdapter, RowError
from registry_state import datasets, eval_store
from registry_state.errors import Q2QError
from registry_state.prompts import PromptTemplate
from registry_state.taxonomy import Taxonomy

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class EvaluationError(Q2QError):
    """An evaluation run could not start or failed as a whole."""


@dataclass(frozen=True)
class EvaluatedModel:
    """The spec fields an evaluation needs, from a YAML spec or a registry row."""

    model_id: str
    provider: str
    model_name: str
    prompt_version: str
    thresholds: Mapping[str, float | int]
    identity_hash: str


@dataclass(frozen=True)
class EvaluationRequest:
    model: EvaluatedModel
    prompt: PromptTemplate
    dataset_id: uuid.UUID
    taxonomy: Taxonomy
    use_cache: bool = True
    run_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class EvaluationOutcome:
    run_id: uuid.UUID
    dataset: datasets.DatasetRecord
    metrics: dict[str, Any]
    rows_total: int
    rows_failed: int
    provider_calls: int
    cache_hits: int
    row_errors: list[dict[str, Any]]
    finished_at: dt.datetime


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def run_evaluation(
    engine: sa.Engine,
    request: EvaluationRequest,
    *,
    adapter: ProviderAdapter,
    progress: Progress | None = None,
    clock: Callable[[], dt.datetime] = _utc_now,
) -> EvaluationOutcome:
    """Evaluate `request.model` on the dataset; store and return the run."""
    model = request.model
    with engine.connect() as connection:
        dataset = datasets.find_dataset(connection, str(request.dataset_id))
        examples = datasets.read_examples(connection, dataset.id)
    if list(dataset.labels) != list(request.taxonomy.names):
        raise EvaluationError(
            f"dataset {dataset.name} ({dataset.id}) has the labels {', '.join(dataset.labels)} "
            f"but the repository taxonomy is {', '.join(request.taxonomy.names)}; upload the "
            "dataset again with one column per taxonomy label"
        )

    with engine.begin() as connection:
        eval_store.start_run(connection, eval_store.RunStart(
            id=request.run_id, dataset_id=dataset.id, model_id=model.model_id,
            provider=model.provider, model_name=model.model_name,
            prompt_version=model.prompt_version, thresholds=model.thresholds,
            identity_hash=model.identity_hash, prompt_hash=request.prompt.sha256,
            dataset_hash=dataset.content_hash, started_at=clock(),
        ))
    logger.info("Started evaluation run %s of %s on dataset %s (%d rows)",
                request.run_id, model.model_id, dataset.name, len(examples))
    try:
        return _evaluate(engine, request, dataset=dataset, examples=examples, adapter=adapter,
                         progress=progress, clock=clock)
    except BaseException as error:
        with engine.begin() as connection:
            eval_store.fail_run(connection, request.run_id, error=str(error) or repr(error),
                                finished_at=clock())
        logger.error("Evaluation run %s of %s failed: %s", request.run_id, model.model_id, error)
        raise


def _evaluate(
    engine: sa.Engine,
    request: EvaluationRequest,
    *,
    dataset: datasets.DatasetRecord,
    examples: list[datasets.Example],
    adapter: ProviderAdapter,
    progress: Progress | None,
    clock: Callable[[], dt.datetime],
) -> EvaluationOutcome:
    model = request.model
    parameters = adapter.parameters(model.model_name)
    keys: list[eval_store.CacheKey] = []
    prompts: dict[str, str] = {}
    for example in examples:
        prompt = request.prompt.render(text=example.text, language=example.language,
                                       taxonomy=request.taxonomy)
        key = eval_store.CacheKey(provider=model.provider, model_name=model.model_name,
                                  prompt_hash=_sha256(prompt), parameters=parameters)
        keys.append(key)
        prompts[key.digest] = prompt

    # Read the cache, then ask the provider once per distinct prompt that is not cached.
    outputs: dict[str, Any] = {}
    if request.use_cache:
        with engine.connect() as connection:
            outputs = eval_store.read_cached(connection, prompts)
    cache_hits = sum(1 for key in keys if key.digest in outputs)
    missing = [digest for digest in prompts if digest not in outputs]
    failures: dict[str, RowError] = {}
    calls_before = adapter.calls
    fresh = asyncio.run(_call_provider(adapter, prompts, missing, model=model.model_name,
                                       progress=progress,
                                       already_done=len(prompts) - len(missing),
                                       total=len(prompts)))
    for digest, result in fresh.items():
        if isinstance(result, RowError):
            failures[digest] = result
        else:
            outputs[digest] = result
    provider_calls = adapter.calls - calls_before

    # Cache the successful outputs. Errors are never cached, so a rerun retries them.
    key_by_digest = {key.digest: key for key in keys}
    new_entries = [(key_by_digest[d], r) for d, r in fresh.items() if not isinstance(r, RowError)]
    with engine.begin() as connection:
        eval_store.write_cached(connection, new_entries, now=clock())

    # Decide labels and score the rows that have an output.
    scored: list[ScoredRow] = []
    row_errors: list[dict[str, Any]] = []
    for example, key in zip(examples, keys, strict=True):
        failure = failures.get(key.digest)
        if failure is None:
            try:
                predicted = decide_labels(outputs[key.digest], thresholds=model.thresholds,
                                          taxonomy=request.taxonomy)
            except OutputShapeError as error:
                failure = RowError("malformed", str(error))
            else:
                scored.append(ScoredRow(example.language, example.labels, predicted))
                continue
        row_errors.append({"line": example.line, "language": example.language,
                           "kind": failure.kind, "message": failure.message})

    metrics = compute_metrics(scored, labels=request.taxonomy.names)
    finished_at = clock()
    with engine.begin() as connection:
        eval_store.finish_run(connection, request.run_id, eval_store.RunFinish(
            finished_at=finished_at, rows_total=len(examples), rows_failed=len(row_errors),
            provider_calls=provider_calls, cache_hits=cache_hits, metrics=metrics,
            results=result_rows(metrics), row_errors=row_errors,
        ))
    logger.info("Finished evaluation run %s of %s: %d rows, %d failed, %d provider calls, "
                "%d cache hits", request.run_id, model.model_id, len(examples),
                len(row_errors), provider_calls, cache_hits)
    return EvaluationOutcome(
        run_id=request.run_id, dataset=dataset, metrics=metrics, rows_total=len(examples),
        rows_failed=len(row_errors), provider_calls=provider_calls, cache_hits=cache_hits,
        row_errors=row_errors, finished_at=finished_at,
    )


async def _call_provider(
    adapter: ProviderAdapter,
    prompts: Mapping[str, str],
    digests: list[str],
    *,
    model: str,
    progress: Progress | None,
    already_done: int,
    total: int,
) -> dict[str, dict[str, Any] | RowError]:
    results: dict[str, dict[str, Any] | RowError] = {}
    done = already_done
    if progress:
        progress(done, total)

    async def one(digest: str) -> None:
        nonlocal done
        try:
            results[digest] = await adapter.classify(prompts[digest], model=model)
        except RowError as error:
            results[digest] = error
        done += 1
        if progress:
            progress(done, total)

    try:
        await asyncio.gather(*(one(digest) for digest in digests))
    finally:
        await adapter.close()
    return results
