"""`q2q eval`: upload datasets, run evaluations, show results.

- `q2q eval upload FILE.csv --name NAME` parses and stores a dataset whole.
- `q2q eval run --model ID --dataset NAME` evaluates a spec of the working
  tree on a stored dataset through its provider's SDK, stores the run and
  writes `evals/<model-id>.json`, signed when `Q2Q_EVAL_SIGNING_KEY` is set.
- `q2q eval results RUN_ID` and `q2q eval datasets` read what is stored.

Provider API keys come only from the providers' environment variables.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

import click

from policies.eval_report import (
    SIGNING_KEY_VARIABLE,
    build_report,
    report_path,
    sign_report,
    write_report,
)
from reconciler.cli.options import db_option, format_option, open_engine, print_json
from reconciler.evaluation import EvaluationOutcome, EvaluationRequest, run_evaluation
from reconciler.models_tree import evaluated_model, load_tree
from reconciler.providers import CallSettings, adapter_for
from registry_state import datasets, eval_store
from registry_state.prompts import find_prompt_file

MAX_BYTES_VARIABLE = "Q2Q_EVAL_MAX_BYTES"


@click.group(name="eval")
def eval_group() -> None:
    """Evaluate model specs on labelled datasets (the gate before activation)."""


@eval_group.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Dataset name, such as v3_evaluation.")
@click.option("--encoding", default=None,
              help="Encoding of FILE when it is not UTF-8, such as cp1252 or utf-16.")
@click.option("--max-bytes", type=click.IntRange(min=1), envvar=MAX_BYTES_VARIABLE,
              default=datasets.DEFAULT_MAX_BYTES, show_default=True,
              help=f"Largest file accepted, in bytes [env: {MAX_BYTES_VARIABLE}].")
@click.option("--repo", "repo_root", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True,
              help="Models repository whose registry.yaml sets the label taxonomy.")
@db_option
@format_option("text", "json")
def upload(file: Path, name: str, encoding: str | None, max_bytes: int, repo_root: Path,
           database_url: str, output_format: str) -> None:
    """Store the labelled examples of FILE as a dataset.

    FILE is a CSV with the columns text, language and one 0/1 column per
    label of the taxonomy. A bad row fails the upload and nothing is stored.
    """
    taxonomy = load_tree(repo_root).taxonomy
    size = file.stat().st_size
    if size > max_bytes:
        raise datasets.DatasetError(str(file), [
            f"the file has {size} bytes, more than the limit of {max_bytes}; "
            f"split it or raise --max-bytes ({MAX_BYTES_VARIABLE})"])
    parsed = datasets.parse_dataset(file.read_bytes(), source=str(file), taxonomy=taxonomy,
                                    encoding=encoding, max_bytes=max_bytes)
    engine = open_engine(database_url)
    with engine.begin() as connection:
        record, created = datasets.store_dataset(connection, parsed, name=name,
                                                 now=dt.datetime.now(dt.UTC))
    if output_format == "json":
        print_json({"success": True, "created": created, "dataset": record.as_json()})
        return
    verb = "Stored" if created else "Already stored"
    click.echo(f"{verb} dataset {record.name} ({record.id}): {record.row_count} rows, "
               f"languages {', '.join(record.languages)}, sha256 {record.content_hash}")


@eval_group.command()
@click.option("--model", "model_id", required=True, help="Id of the spec to evaluate.")
@click.option("--dataset", "dataset_ref", required=True, help="Dataset name or id.")
@click.option("--repo", "repo_root", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Models repository (working tree).")
@click.option("--path", "spec_dir", default="models", show_default=True,
              help="Spec directory inside the repository.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Requests in flight to the provider at once.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=60.0,
              show_default=True, help="Timeout of one provider request, in seconds.")
@click.option("--max-attempts", type=click.IntRange(1, 10), default=4, show_default=True,
              help="Attempts per row on 429, 5xx and timeouts, the first included.")
@click.option("--no-cache", is_flag=True,
              help="Ask the provider even for prompts whose response is cached.")
@click.option("--report/--no-report", default=True, show_default=True,
              help="Write evals/<model-id>.json in the repository.")
@db_option
@format_option("text", "json")
def run(model_id: str, dataset_ref: str, repo_root: Path, spec_dir: str, concurrency: int,
        timeout_s: float, max_attempts: int, no_cache: bool, report: bool, database_url: str,
        output_format: str) -> None:
    """Evaluate a spec of the working tree on a stored dataset.

    Renders prompts/<prompt_version>.* per row, requests structured output
    from the spec's provider, applies the spec's thresholds, and stores per-language
    and per-label precision, recall and F1. Cached responses are reused, so a
    rerun with nothing changed makes no provider call.
    """
    tree = load_tree(repo_root, spec_dir)
    loaded = tree.spec(model_id)
    model = evaluated_model(loaded)
    prompt = find_prompt_file(repo_root, model.prompt_version)
    adapter_class = adapter_for(model.provider)
    adapter_class.check_api_key(os.environ)
    engine = open_engine(database_url)
    with engine.connect() as connection:
        dataset = datasets.find_dataset(connection, dataset_ref)
    adapter = adapter_class(
        taxonomy=tree.taxonomy,
        settings=CallSettings(timeout_s=timeout_s, max_attempts=max_attempts,
                              concurrency=concurrency),
    )
    request = EvaluationRequest(model=model, prompt=prompt, dataset_id=dataset.id,
                                taxonomy=tree.taxonomy, use_cache=not no_cache)
    outcome = _run_with_progress(engine, request, adapter=adapter,
                                 show=output_format == "text" and sys.stderr.isatty())

    written: Path | None = None
    signed = False
    if report:
        document = build_report(
            model={"modelId": model.model_id, "provider": model.provider,
                   "model": model.model_name, "promptVersion": model.prompt_version,
                   "thresholds": dict(model.thresholds), "specPath": loaded.path},
            hashes={"identity": model.identity_hash, "prompt": prompt.sha256,
                    "dataset": outcome.dataset.content_hash},
            dataset={"id": str(outcome.dataset.id), "name": outcome.dataset.name,
                     "rows": outcome.dataset.row_count, "promptPath": prompt.path},
            run=_run_summary(outcome),
            metrics=outcome.metrics,
        )
        key = os.environ.get(SIGNING_KEY_VARIABLE)
        if key:
            document = sign_report(document, key)
            signed = True
        written = report_path(repo_root, model.model_id)
        write_report(written, document)

    if output_format == "json":
        print_json({"success": True, **_run_summary(outcome), "metrics": outcome.metrics,
                    "report": str(written) if written else None, "signed": signed})
        return
    _print_outcome(outcome)
    if written is not None:
        state = "signed" if signed else f"unsigned: {SIGNING_KEY_VARIABLE} is not set"
        click.echo(f"Wrote {written} ({state}); commit it with the spec change.")


def _run_with_progress(engine: Any, request: EvaluationRequest, *, adapter: Any,
                       show: bool) -> EvaluationOutcome:
    if not show:
        return run_evaluation(engine, request, adapter=adapter)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"Evaluating {request.model.model_id}", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return run_evaluation(engine, request, adapter=adapter, progress=update)


def _run_summary(outcome: EvaluationOutcome) -> dict[str, Any]:
    return {
        "runId": str(outcome.run_id),
        "finishedAt": outcome.finished_at.isoformat().replace("+00:00", "Z"),
        "rowsTotal": outcome.rows_total,
        "rowsFailed": outcome.rows_failed,
        "providerCalls": outcome.provider_calls,
        "cacheHits": outcome.cache_hits,
    }


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_slices(metrics: dict[str, Any]) -> None:
    click.echo(f"{'slice':<10} {'rows':>5} {'macro F1':>9} {'micro F1':>9}")
    for name, entry in metrics["slices"].items():
        click.echo(f"{name:<10} {entry['rows']:>5} {_number(entry['macro']['f1']):>9} "
                   f"{_number(entry['micro']['f1']):>9}")
    overall = metrics["slices"]["all"]["labels"]
    click.echo(f"\n{'label (all languages)':<28} {'precision':>9} {'recall':>7} {'F1':>6} "
               f"{'support':>7}")
    for label, values in overall.items():
        click.echo(f"{label:<28} {_number(values['precision']):>9} "
                   f"{_number(values['recall']):>7} {_number(values['f1']):>6} "
                   f"{values['support']:>7}")
    click.echo("\nmacro: " + metrics["averaging"]["macro"])
    click.echo("micro: " + metrics["averaging"]["micro"])


def _print_outcome(outcome: EvaluationOutcome) -> None:
    click.echo(f"Run {outcome.run_id} on {outcome.dataset.name}: {outcome.rows_total} rows, "
               f"{outcome.rows_failed} failed, {outcome.provider_calls} provider calls, "
               f"{outcome.cache_hits} cache hits")
    for error in outcome.row_errors[:10]:
        click.echo(f"  line {error['line']}: {error['kind']}: {error['message']}", err=True)
    if len(outcome.row_errors) > 10:
        click.echo(f"  ... and {len(outcome.row_errors) - 10} more row errors "
                   f"(see 'q2q eval results {outcome.run_id}')", err=True)
    _print_slices(outcome.metrics)


@eval_group.command()
@click.argument("run_id")
@db_option
@format_option("text", "json")
def results(run_id: str, database_url: str, output_format: str) -> None:
    """Show an evaluation run and its metrics."""
    engine = open_engine(database_url)
    with engine.connect() as connection:
        document = eval_store.run_json(connection, run_id)
    if output_format == "json":
        print_json({"success": True, "run": document})
        return
    click.echo(f"Run {document['runId']} ({document['status']}): {document['modelId']} on "
               f"dataset {document['datasetId']}, {document['rowsTotal']} rows, "
               f"{document['rowsFailed']} failed")
    if document["error"]:
        click.echo(f"error: {document['error']}")
    for error in document["rowErrors"]:
        click.echo(f"  line {error['line']}: {error['kind']}: {error['message']}")
    if document["metrics"]:
        _print_slices(document["metrics"])


@eval_group.command(name="datasets")
@db_option
@format_option("text", "json")
def list_datasets(database_url: str, output_format: str) -> None:
    """List stored datasets, newest first."""
    engine = open_engine(database_url)
    with engine.connect() as connection:
        records = datasets.list_datasets(connection)
    if output_format == "json":
        print_json({"success": True, "datasets": [r.as_json() for r in records]})
        return
    for record in records:
        click.echo(f"{record.id}  {record.name:<24} {record.row_count:>6} rows  "
                   f"{record.content_hash[:12]}  {record.created_at:%Y-%m-%d %H:%M}")
