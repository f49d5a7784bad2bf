"""`q2q predictions import FILE`: load classifier predictions from JSON Lines or CSV.

Every row is validated, and the whole file goes in one transaction: a bad
row stops the import with its line number and nothing of the file is stored.
Rows whose (request_id, label) is already stored are skipped, so importing a
file twice stores it once. A progress bar on stderr follows the bytes read.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import click

from reconciler.cli.options import db_option, open_engine, print_json
from registry_state import prediction_store
from registry_state.predictions import InvalidPredictionError, PredictionRow, parse_prediction

BATCH_ROWS = 10_000
ANALYZE_AFTER_ROWS = 100_000
"""Imports at least this large refresh the planner's statistics afterwards."""


def _jsonl_rows(handle: IO[bytes], advance: Callable[[int], None]) -> Iterator[PredictionRow]:
    for number, line in enumerate(handle, start=1):
        advance(len(line))
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            reason = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
            raise InvalidPredictionError(f"invalid JSON ({reason})", line=number) from None
        yield parse_prediction(data, line=number)


def _csv_rows(handle: IO[bytes], advance: Callable[[int], None]) -> Iterator[PredictionRow]:
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    consumed = 0
    for row in reader:
        if None in row:
            raise InvalidPredictionError(
                f"the row has more values than the header's {len(reader.fieldnames or [])} "
                "columns", line=reader.line_num)
        position = handle.tell() if handle.seekable() else consumed
        advance(position - consumed)
        consumed = position
        yield parse_prediction(row, line=reader.line_num)


def _batches(rows: Iterator[PredictionRow]) -> Iterator[list[PredictionRow]]:
    batch: list[PredictionRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def _detect_format(path: Path, requested: str) -> str:
    if requested != "auto":
        return requested
    if path.suffix.lower() == ".csv":
        return "csv"
    if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    raise click.UsageError(
        f"cannot tell the format of {path.name} from its extension; pass --format jsonl or "
        "--format csv"
    )


@click.group()
def predictions() -> None:
    """Load classifier predictions for drift checks."""


@predictions.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@db_option
@click.option("--format", "file_format", type=click.Choice(["auto", "jsonl", "csv"]),
              default="auto", show_default=True,
              help="File format; auto goes by the extension (.jsonl, .ndjson, .csv).")
@click.option("--progress/--no-progress", default=None,
              help="Show a progress bar on stderr [default: when stderr is a terminal].")
@click.option("--output", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format of the summary.")
def import_command(file: Path, database_url: str, file_format: str, progress: bool | None,
                   output_format: str) -> None:
    """Import FILE: one prediction per line (JSON Lines) or per row (CSV, with a header).

    Fields: model_id, provider, language, label, score (optional, in [0, 1]),
    positive (true or false), created_at (ISO 8601 with a UTC offset) and
    request_id. A row is identified by (request_id, label).
    """
    kind = _detect_format(file, file_format)
    engine = open_engine(database_url)
    show = sys.stderr.isatty() if progress is None else progress
    size = file.stat().st_size
    with open(file, "rb") as handle, click.progressbar(
        length=size, label=f"Importing {file.name}", file=sys.stderr if show else io.StringIO(),
    ) as bar:
        reader = _csv_rows if kind == "csv" else _jsonl_rows
        rows = reader(handle, bar.update)
        try:
            with engine.begin() as connection:
                result = prediction_store.write_predictions(connection, _batches(rows))
                if result.inserted >= ANALYZE_AFTER_ROWS:
                    prediction_store.analyze(connection)
        except InvalidPredictionError as error:
            raise InvalidPredictionError(
                f"{file}: {error}; nothing was imported, fix the row and run the import again"
            ) from None
    summary: dict[str, Any] = {"file": str(file), "received": result.received,
                               "inserted": result.inserted, "duplicates": result.duplicates}
    if output_format == "json":
        print_json(summary)
        return
    click.echo(f"Imported {result.inserted} predictions from {file} "
               f"({result.duplicates} already stored, skipped).")
