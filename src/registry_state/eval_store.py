"""Storage of evaluation runs, their results, and the provider response cache.

The harness records a run as `running` when it starts, then finishes it with
the metrics document, one `eval_results` row per (slice, label or average),
and the per-row errors; or marks it `failed` with the error. `run_json`
renders a run in the camelCase shape of `GET /q2q/eval/results/{runId}`.

The cache maps a key (provider, model, rendered-prompt hash, parameters) to a
parsed provider output. Only successful outputs are written; a key that two
runs write at once keeps the first value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from registry_state.errors import Q2QError
from registry_state.tables_eval import eval_results, eval_runs, provider_response_cache


class RunNotFoundError(Q2QError):
    """No evaluation run with the requested id is stored."""


@dataclass(frozen=True)
class RunStart:
    """The model, dataset and hashes of an evaluation run, fixed when it starts."""

    id: uuid.UUID
    dataset_id: uuid.UUID
    model_id: str
    provider: str
    model_name: str
    prompt_version: str
    thresholds: Mapping[str, float | int]
    identity_hash: str
    prompt_hash: str
    dataset_hash: str
    started_at: dt.datetime


@dataclass(frozen=True)
class RunFinish:
    finished_at: dt.datetime
    rows_total: int
    rows_failed: int
    provider_calls: int
    cache_hits: int
    metrics: Mapping[str, Any]
    results: Sequence[Mapping[str, Any]]
    row_errors: Sequence[Mapping[str, Any]]


def start_run(connection: sa.Connection, run: RunStart) -> None:
    connection.execute(
        sa.insert(eval_runs).values(
            id=run.id, dataset_id=run.dataset_id, model_id=run.model_id, provider=run.provider,
            model_name=run.model_name, prompt_version=run.prompt_version,
            thresholds=dict(run.thresholds), identity_hash=run.identity_hash,
            prompt_hash=run.prompt_hash, dataset_hash=run.dataset_hash, status="running",
            started_at=run.started_at,
        )
    )


def finish_run(connection: sa.Connection, run_id: uuid.UUID, finish: RunFinish) -> None:
    connection.execute(
        sa.update(eval_runs).where(eval_runs.c.id == run_id).values(
            status="completed", finished_at=finish.finished_at, rows_total=finish.rows_total,
            rows_failed=finish.rows_failed, provider_calls=finish.provider_calls,
            cache_hits=finish.cache_hits, metrics=dict(finish.metrics),
            row_errors=list(finish.row_errors),
        )
    )
    if finish.results:
        connection.execute(sa.insert(eval_results),
                           [{"run_id": run_id, **row} for row in finish.results])


def fail_run(
    connection: sa.Connection, run_id: uuid.UUID, *, error: str, finished_at: dt.datetime
) -> None:
    connection.execute(
        sa.update(eval_runs).where(eval_runs.c.id == run_id).values(
            status="failed", finished_at=finished_at, error=error[:4000],
        )
    )


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def run_json(connection: sa.Connection, run_id: str | uuid.UUID) -> dict[str, Any]:
    """Return a run with its results, or raise `RunNotFoundError`."""
    try:
        key = run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(run_id)
    except ValueError:
        raise RunNotFoundError(f"evaluation run {run_id!r} not found; a run id is a UUID "
                               "as printed by 'q2q eval run'") from None
    row = connection.execute(sa.select(eval_runs).where(eval_runs.c.id == key)).first()
    if row is None:
        raise RunNotFoundError(f"evaluation run {run_id} not found; start one with "
                               "'q2q eval run' or POST /q2q/eval/run")
    results = connection.execute(
        sa.select(eval_results).where(eval_results.c.run_id == key)
        .order_by(eval_results.c.language, eval_results.c.label)
    )
    return {
        "runId": str(row.id),
        "status": row.status,
        "datasetId": str(row.dataset_id),
        "modelId": row.model_id,
        "provider": row.provider,
        "modelName": row.model_name,
        "promptVersion": row.prompt_version,
        "thresholds": dict(row.thresholds),
        "hashes": {"identity": row.identity_hash, "prompt": row.prompt_hash,
                   "dataset": row.dataset_hash},
        "startedAt": _iso(row.started_at),
        "finishedAt": _iso(row.finished_at),
        "rowsTotal": row.rows_total,
        "rowsFailed": row.rows_failed,
        "providerCalls": row.provider_calls,
        "cacheHits": row.cache_hits,
        "error": row.error,
        "rowErrors": row.row_errors or [],
        "metrics": row.metrics,
        "results": [
            {"language": r.language, "label": r.label, "precision": r.precision,
             "recall": r.recall, "f1": r.f1, "support": r.support}
            for r in results
        ],
    }


# --- provider response cache ---------------------------------------------------------------


@dataclass(frozen=True)
class CacheKey:
    """Everything that decides a provider's output for one request."""

    provider: str
    model_name: str
    prompt_hash: str
    parameters: Mapping[str, Any]

    @property
    def digest(self) -> str:
        canonical = json.dumps(
            [self.provider, self.model_name, self.prompt_hash, self.parameters],
            sort_keys=True, separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def read_cached(connection: sa.Connection, digests: Iterable[str]) -> dict[str, Any]:
    """Return the cached outputs for the given key digests that are stored."""
    wanted = sorted(set(digests))
    found: dict[str, Any] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        query = sa.select(provider_response_cache.c.cache_key, provider_response_cache.c.output) \
            .where(provider_response_cache.c.cache_key.in_(chunk))
        found.update({row.cache_key: row.output for row in connection.execute(query)})
    return found


def write_cached(
    connection: sa.Connection, entries: Sequence[tuple[CacheKey, Mapping[str, Any]]],
    *, now: dt.datetime,
) -> None:
    """Store successful outputs; a key that is already stored keeps its value."""
    if not entries:
        return
    rows = [
        {"cache_key": key.digest, "provider": key.provider, "model_name": key.model_name,
         "prompt_hash": key.prompt_hash, "parameters": dict(key.parameters),
         "output": dict(output), "created_at": now}
        for key, output in entries
    ]
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(provider_response_cache).on_conflict_do_nothing(
        index_elements=["cache_key"]
    )
    for start in range(0, len(rows), 500):
        connection.execute(statement, rows[start:start + 500])
