"""`q2q drift check|checks|alerts|report`: run drift checks now and read what they stored.

`check` reads the policies in policies/drift.yaml at the last applied
revision of the models repository (--repo, --branch), runs them against the
database and stores every check. `checks` and `alerts` print stored checks in
the API's camelCase shape with --format json. `report` writes one HTML page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from reconciler.cli.options import (
    db_option,
    format_option,
    open_engine,
    print_json,
    source_options,
)
from reconciler.drift_check import DriftChecker, PolicyRun
from reconciler.git_source import GitSource
from registry_state import drift_store


def _console() -> Console:
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=240)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.6f}"


@click.group()
def drift() -> None:
    """Run drift checks and read stored checks and alerts."""


@drift.command("check")
@source_options
@db_option
@click.option("--policy", "policy_id", default=None,
              help="Run only this policy id [default: every policy in policies/drift.yaml].")
@format_option("text", "json")
def check_command(repo: str, branch: str | None, spec_dir: str, database_url: str,
                  policy_id: str | None, output_format: str) -> None:
    """Run drift policies now and store every check; exit 3 if any check alerted."""
    engine = open_engine(database_url)
    source = GitSource(repo, branch=branch)
    try:
        runs = DriftChecker(engine, source, spec_dir=spec_dir.strip("/") or ".").run(
            policy_id=policy_id)
    finally:
        source.close()
    if output_format == "json":
        print_json({"success": True, "runs": [_run_json(run) for run in runs]})
    else:
        _print_runs(runs)
    if any(run.alerts for run in runs):
        raise SystemExit(3)


def _run_json(run: PolicyRun) -> dict[str, Any]:
    return {
        "policyId": run.policy_id, "runId": str(run.run_id), "revision": run.revision,
        "windowStart": run.window.start, "windowEnd": run.window.end,
        "counts": run.counts(), "durationS": round(run.duration_s, 4),
        "checks": [{"modelId": r.model_id, "label": r.label, "language": r.language,
                    "psiScore": r.psi, "jsScore": r.js, "status": r.status,
                    "sampleSize": r.sample_size} for r in run.records],
        "actions": run.actions,
    }


def _print_runs(runs: list[PolicyRun]) -> None:
    if not runs:
        click.echo("No drift policies in policies/drift.yaml at the last applied revision.")
        return
    for run in runs:
        counts = ", ".join(f"{n} {status}" for status, n in run.counts().items()) or "no groups"
        click.echo(f"Policy {run.policy_id} at {run.revision[:12]}, window "
                   f"[{run.window.start.isoformat()}, {run.window.end.isoformat()}): {counts}")
        table = Table("model id", "label", "language", "n", "PSI", "JS", "status",
                      box=None, pad_edge=False)
        for record in run.records:
            table.add_row(record.model_id, record.label, record.language,
                          str(record.sample_size), _score(record.psi), _score(record.js),
                          record.status)
        _console().print(table)
        for model_id, outcome in run.actions.items():
            rollback = outcome.get("rollback") or {}
            if isinstance(rollback, dict) and rollback.get("branch"):
                click.echo(f"Rollback branch for {model_id}: {rollback['branch']} "
                           f"({rollback.get('detail')}); review and merge it to roll back")


def _list(database_url: str, *, limit: int, alerts_only: bool, policy_id: str | None,
          model_id: str | None, output_format: str) -> None:
    engine = open_engine(database_url)
    with engine.connect() as connection:
        rows = drift_store.list_checks(connection, limit=limit, alerts_only=alerts_only,
                                       policy_id=policy_id, model_id=model_id)
    if output_format == "json":
        key = "alerts" if alerts_only else "checks"
        print_json({"success": True, "count": len(rows), key: rows})
        return
    table = Table("check date", "policy", "model id", "label", "language", "n", "PSI", "JS",
                  "status", box=None, pad_edge=False)
    for row in rows:
        table.add_row(row["checkDate"], row["policyId"], row["modelId"], row["label"],
                      row["language"], str(row["sampleSize"]), _score(row["psiScore"]),
                      _score(row["jsScore"]), row["status"])
    _console().print(table)


def _filters(function: Any) -> Any:
    function = click.option("--model", "model_id", default=None,
                            help="Only checks of this model id.")(function)
    function = click.option("--policy", "policy_id", default=None,
                            help="Only checks of this policy id.")(function)
    return function


@drift.command("checks")
@db_option
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000),
              help="Maximum number of checks to show, newest first.")
@_filters
@format_option("text", "json")
def checks_command(database_url: str, limit: int, policy_id: str | None, model_id: str | None,
                   output_format: str) -> None:
    """Show stored drift checks, newest first."""
    _list(database_url, limit=limit, alerts_only=False, policy_id=policy_id,
          model_id=model_id, output_format=output_format)


@drift.command("alerts")
@db_option
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000),
              help="Maximum number of alerts to show, newest first.")
@_filters
@format_option("text", "json")
def alerts_command(database_url: str, limit: int, policy_id: str | None, model_id: str | None,
                   output_format: str) -> None:
    """Show stored drift checks that raised an alert, newest first."""
    _list(database_url, limit=limit, alerts_only=True, policy_id=policy_id, model_id=model_id,
          output_format=output_format)


@drift.command("report")
@db_option
@click.option("--html", "html_file", required=True,
              type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="File to write the self-contained HTML report to.")
@click.option("--days", default=90, show_default=True, type=click.IntRange(1, 3650),
              help="How many days of checks to draw.")
@_filters
def report_command(database_url: str, html_file: Path, days: int, policy_id: str | None,
                   model_id: str | None) -> None:
    """Write PSI and JS over time per label and language, with thresholds and alerts."""
    from reconciler.drift_report import write_report

    engine = open_engine(database_url)
    count = write_report(engine, html_file, days=days, policy_id=policy_id, model_id=model_id)
    click.echo(f"Wrote {html_file} with {count} charts.")
