"""`q2q status`, `q2q models` and `q2q audit`: read what the registry holds.

JSON output uses the governance guide's camelCase field names and, for model
lists, its `{"success", "count", "models"}` envelope.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from reconciler.cli.options import db_option, format_option, open_engine, print_json
from registry_state import queries, store


def _console() -> Console:
    # Piped output gets a wide fixed width, so columns are not cut for grep or less.
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=240)
    return console


@click.command()
@db_option
@format_option("text", "json")
def status(database_url: str, output_format: str) -> None:
    """Show the last applied and last attempted revisions and the last error."""
    engine = open_engine(database_url)
    with engine.connect() as connection:
        sync = store.read_status(connection)
        last_run = queries.get_run(connection, sync.last_run_id)
    in_sync = sync.last_applied_revision is not None and \
        sync.last_applied_revision == sync.last_attempted_revision and \
        sync.last_status not in {"failed", "refused"}
    state = "never applied" if sync.last_attempted_revision is None else \
        "in sync" if in_sync else f"stalled ({sync.last_status})"
    document: dict[str, Any] = {
        "syncStatus": state,
        "source": sync.source,
        "lastAppliedRevision": sync.last_applied_revision,
        "lastAppliedAt": sync.last_applied_at,
        "lastAttemptedRevision": sync.last_attempted_revision,
        "lastAttemptedAt": sync.last_attempted_at,
        "lastStatus": sync.last_status,
        "lastError": sync.last_error,
        "nextCutoverAt": sync.next_cutover_at,
        "lastRun": last_run,
    }
    if output_format == "json":
        print_json(document)
        return
    click.echo(f"Sync status:             {state}")
    click.echo(f"Source:                  {sync.source or '-'}")
    click.echo(f"Last applied revision:   {sync.last_applied_revision or '-'}"
               f"{_at(sync.last_applied_at)}")
    click.echo(f"Last attempted revision: {sync.last_attempted_revision or '-'}"
               f"{_at(sync.last_attempted_at)}")
    if sync.next_cutover_at:
        click.echo(f"Next scheduled cutover:  {sync.next_cutover_at.isoformat()}")
    if sync.last_error and not in_sync:
        click.echo(f"Last error:              {sync.last_error}")


def _at(value: Any) -> str:
    return f" at {value.isoformat()}" if value else ""


@click.group()
def models() -> None:
    """List and show recorded models."""


@models.command("list")
@db_option
@click.option("--all", "include_retired", is_flag=True, help="Include retired models.")
@format_option("text", "json")
def list_command(database_url: str, include_retired: bool, output_format: str) -> None:
    """List models, active first within each provider."""
    engine = open_engine(database_url)
    with engine.connect() as connection:
        rows = queries.list_models(connection, include_retired=include_retired)
    if output_format == "json":
        print_json({"success": True, "count": len(rows), "models": rows})
        return
    table = Table("model id", "provider", "model", "prompt", "effective from", "state",
                  box=None, pad_edge=False)
    for row in rows:
        table.add_row(row["modelId"], row["provider"], row["modelName"], row["promptVersion"],
                      row["effectiveFrom"], _state(row))
    _console().print(table)


def _state(row: dict[str, Any]) -> str:
    if row["retiredAt"]:
        return "retired"
    if row["active"]:
        return "active"
    if row["declaredActive"]:
        return "scheduled"
    return "inactive"


def _print_model(row: dict[str, Any], output_format: str) -> None:
    if output_format == "json":
        print_json({"success": True, "model": row})
        return
    for key, value in row.items():
        if key == "thresholds":
            click.echo("thresholds:")
            for name, threshold in value.items():
                click.echo(f"  {name}: {threshold}")
        else:
            click.echo(f"{key}: {value if value is not None else '-'}")


@models.command("show")
@click.argument("model_id")
@db_option
@format_option("text", "json")
def show_command(model_id: str, database_url: str, output_format: str) -> None:
    """Show one model by its id."""
    engine = open_engine(database_url)
    with engine.connect() as connection:
        row = queries.get_model(connection, model_id)
    _print_model(row, output_format)


@models.command("active")
@click.argument("provider")
@db_option
@format_option("text", "json")
def active_command(provider: str, database_url: str, output_format: str) -> None:
    """Show the model in effect now for PROVIDER (claude, openai or gemini)."""
    engine = open_engine(database_url)
    with engine.connect() as connection:
        row = queries.active_model(connection, provider)
    _print_model(row, output_format)


@click.command()
@db_option
@click.option("--model", "model_id", default=None, help="Only records of this model id.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000),
              help="Maximum number of records to show.")
@format_option("text", "json")
def audit(database_url: str, model_id: str | None, limit: int, output_format: str) -> None:
    """Show audit records, newest first: what changed, by which commit and author."""
    engine = open_engine(database_url)
    with engine.connect() as connection:
        records = queries.list_audit(connection, model_id=model_id, limit=limit)
    if output_format == "json":
        print_json({"success": True, "count": len(records), "records": records})
        return
    table = Table("when", "model id", "change", "revision", "author", "subject",
                  box=None, pad_edge=False)
    for record in records:
        author = (record["commitAuthor"] or "").split(" <")[0]
        table.add_row(record["recordedAt"], record["modelId"], record["change"],
                      (record["revision"] or "")[:12], author, record["commitSubject"] or "")
    _console().print(table)
