"""Evaluation datasets: parse an uploaded CSV of labelled examples, then store it whole.

Input: the file's bytes, its display name, the label taxonomy and an optional
declared encoding. `parse_dataset` returns a `ParsedDataset` (rows with their
source line, the decoded encoding and a content hash) or raises
`DatasetError` listing every bad line. `store_dataset` inserts the dataset and
all its rows on the caller's transaction, so nothing is stored half.
`q2q eval upload` and `POST /q2q/eval/upload` call both.

The columns are `text`, `language` and one 0/1 column per taxonomy label. The
content hash is a SHA-256 over the decoded rows, not the raw bytes, so the same
examples saved with or without a BOM, or in another declared encoding, hash
the same.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import difflib
import hashlib
import io
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from registry_state.errors import Q2QError
from registry_state.tables_eval import eval_datasets, eval_rows
from registry_state.taxonomy import Taxonomy

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MAX_LISTED_PROBLEMS = 20
LANGUAGE_PATTERN = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_INSERT_BATCH = 500


class DatasetError(Q2QError):
    """An uploaded dataset is invalid; nothing of it was stored."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        shown = self.problems[:MAX_LISTED_PROBLEMS]
        more = len(self.problems) - len(shown)
        lines = [f"{source}: {problem}" for problem in shown]
        if more:
            lines.append(f"{source}: ... and {more} more problems")
        lines.append("Nothing was stored; fix the file and run 'q2q eval upload' again.")
        super().__init__("\n".join(lines))


class DatasetNotFoundError(Q2QError):
    """No dataset with the requested id or name is stored."""


@dataclass(frozen=True)
class Example:
    """One labelled row: `line` is the file line where its record starts."""

    line: int
    text: str
    language: str
    labels: dict[str, int]


@dataclass(frozen=True)
class ParsedDataset:
    examples: tuple[Example, ...]
    labels: tuple[str, ...]
    encoding: str
    content_hash: str
    size_bytes: int

    @property
    def languages(self) -> list[str]:
        return sorted({example.language for example in self.examples})


@dataclass(frozen=True)
class DatasetRecord:
    """A stored dataset: one row of `eval_datasets`."""

    id: uuid.UUID
    name: str
    content_hash: str
    row_count: int
    labels: list[str]
    languages: list[str]
    encoding: str
    size_bytes: int
    created_at: dt.datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "contentHash": self.content_hash,
            "rowCount": self.row_count,
            "labels": self.labels,
            "languages": self.languages,
            "encoding": self.encoding,
            "sizeBytes": self.size_bytes,
            "createdAt": self.created_at.isoformat().replace("+00:00", "Z"),
        }


# --- decoding ------------------------------------------------------------------------------


_UTF_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32 LE"),
    (codecs.BOM_UTF32_BE, "UTF-32 BE"),
    (codecs.BOM_UTF16_LE, "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "UTF-16 BE"),
)


def decode(content: bytes, *, source: str, encoding: str | None = None) -> tuple[str, str]:
    """Decode the file to text; return (text, encoding name).

    Without a declared encoding the file must be UTF-8, with or without a BOM.
    Anything else is rejected with the encoding it looks like and the
    `--encoding` value that would read it.
    """
    if encoding is not None:
        try:
            codec = codecs.lookup(encoding)
        except LookupError:
            raise DatasetError(source, [f"unknown encoding {encoding!r}; use a Python codec "
                                        "name such as utf-8, cp1252, latin-1 or utf-16"]) from None
        try:
            text = content.decode(codec.name)
        except UnicodeDecodeError as error:
            line = content[: error.start].count(b"\n") + 1
            raise DatasetError(source, [f"line {line}: byte 0x{content[error.start]:02x} "
                                        f"cannot be decoded as {codec.name}"]) from None
        return text.removeprefix("\ufeff"), codec.name

    for bom, name in _UTF_BOMS:
        if content.startswith(bom):
            raise DatasetError(source, [_not_utf8(name, "utf-16" if "16" in name else "utf-32")])
    try:
        return content.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as error:
        line = content[: error.start].count(b"\n") + 1
        bad = content[error.start]
        if content[1:200:2].count(0) > 50 or content[0:200:2].count(0) > 50:
            raise DatasetError(source, [_not_utf8("UTF-16 without a BOM", "utf-16-le")]) from None
        raise DatasetError(
            source,
            [f"line {line}: byte 0x{bad:02x} is not valid UTF-8; the file looks like "
             f"Windows-1252 or ISO-8859-1. {_resave('cp1252')}"],
        ) from None


def _not_utf8(name: str, codec: str) -> str:
    return f"the file is encoded as {name}, not UTF-8. {_resave(codec)}"


def _resave(codec: str) -> str:
    return f"Save it as UTF-8, or pass --encoding {codec} to read it as it is"


# --- parsing -------------------------------------------------------------------------------


def parse_dataset(
    content: bytes,
    *,
    source: str,
    taxonomy: Taxonomy,
    encoding: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ParsedDataset:
    """Parse and check a CSV dataset; raise `DatasetError` naming each bad line."""
    if len(content) > max_bytes:
        raise DatasetError(source, [
            f"the file has {len(content)} bytes, more than the limit of {max_bytes}; split "
            "it, or raise the limit with --max-bytes or Q2Q_EVAL_MAX_BYTES"])
    text, used_encoding = decode(content, source=source, encoding=encoding)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise DatasetError(source, [f"line 1: invalid CSV header: {error}"]) from None
    if header is None or not any(cell.strip() for cell in header):
        raise DatasetError(source, ["the file is empty; the first line must be the header "
                                    f"text,language,{','.join(taxonomy.names)}"])
    columns = [cell.strip() for cell in header]
    _check_header(columns, taxonomy=taxonomy, source=source)

    examples: list[Example] = []
    problems: list[str] = []
    end_line = reader.line_num
    while True:
        start_line = end_line + 1
        try:
            record = next(reader, None)
        except csv.Error as error:
            problems.append(f"line {start_line}: invalid CSV: {error}")
            break
        end_line = reader.line_num
        if record is None:
            break
        if not record or all(not cell.strip() for cell in record):
            continue
        example = _parse_record(record, columns=columns, line=start_line,
                                taxonomy=taxonomy, problems=problems)
        if example is not None:
            examples.append(example)
    if not examples and not problems:
        problems.append("the file has a header but no rows")
    if problems:
        raise DatasetError(source, problems)
    return ParsedDataset(
        examples=tuple(examples),
        labels=taxonomy.names,
        encoding=used_encoding,
        content_hash=content_hash(examples, labels=taxonomy.names),
        size_bytes=len(content),
    )


def _check_header(columns: list[str], *, taxonomy: Taxonomy, source: str) -> None:
    expected = ["text", "language", *taxonomy.names]
    problems = []
    duplicates = sorted({name for name in columns if columns.count(name) > 1})
    if duplicates:
        problems.append(f"line 1: duplicate columns: {', '.join(duplicates)}")
    for name in columns:
        if name not in expected:
            close = difflib.get_close_matches(name, expected, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(expected)}"
            problems.append(f"line 1: unknown column {name!r}; {hint}")
    missing = [name for name in expected if name not in columns]
    if missing:
        problems.append(f"line 1: missing columns: {', '.join(missing)}; the header must "
                        "have text, language and one 0/1 column per taxonomy label")
    if problems:
        raise DatasetError(source, problems)


def _parse_record(
    record: list[str], *, columns: list[str], line: int, taxonomy: Taxonomy, problems: list[str]
) -> Example | None:
    if len(record) != len(columns):
        problems.append(f"line {line}: expected {len(columns)} fields, found {len(record)}; "
                        "quote a field that contains a comma")
        return None
    cells = dict(zip(columns, record, strict=True))
    found: list[str] = []
    text = cells["text"]
    if not text.strip():
        found.append(f"line {line}: text: the text is empty")
    language = cells["language"].strip()
    if not LANGUAGE_PATTERN.match(language):
        found.append(f"line {line}: language: invalid value {language!r}; use a language "
                     "tag such as en, es or pt-BR")
    labels: dict[str, int] = {}
    for name in taxonomy.names:
        value = cells[name].strip()
        if value not in ("0", "1"):
            found.append(f"line {line}: {name}: invalid value {value!r}; allowed values: 0, 1")
            continue
        labels[name] = int(value)
    problems.extend(found)
    if found:
        return None
    return Example(line=line, text=text, language=language, labels=labels)


def content_hash(examples: Sequence[Example], *, labels: Sequence[str]) -> str:
    """Return the SHA-256 of the decoded rows, one canonical JSON line per example."""
    digest = hashlib.sha256()
    digest.update(json.dumps(list(labels)).encode())
    for example in examples:
        row = [example.text, example.language, [example.labels[name] for name in labels]]
        digest.update(b"\n" + json.dumps(row, ensure_ascii=False).encode())
    return digest.hexdigest()


# --- storage -------------------------------------------------------------------------------


def store_dataset(
    connection: sa.Connection, parsed: ParsedDataset, *, name: str, now: dt.datetime
) -> tuple[DatasetRecord, bool]:
    """Insert a dataset and its rows; return (record, created).

    Uploading the same content under the same name again returns the stored
    dataset with `created` False.
    """
    existing = connection.execute(
        sa.select(eval_datasets).where(
            eval_datasets.c.name == name, eval_datasets.c.content_hash == parsed.content_hash
        )
    ).first()
    if existing is not None:
        return _record(existing), False
    dataset_id = uuid.uuid4()
    values = {
        "id": dataset_id,
        "name": name,
        "content_hash": parsed.content_hash,
        "row_count": len(parsed.examples),
        "labels": list(parsed.labels),
        "languages": parsed.languages,
        "encoding": parsed.encoding,
        "size_bytes": parsed.size_bytes,
        "created_at": now,
    }
    connection.execute(sa.insert(eval_datasets).values(**values))
    rows = [
        {"dataset_id": dataset_id, "position": index, "line": example.line,
         "text": example.text, "language": example.language, "labels": example.labels}
        for index, example in enumerate(parsed.examples)
    ]
    for start in range(0, len(rows), _INSERT_BATCH):
        connection.execute(sa.insert(eval_rows), rows[start:start + _INSERT_BATCH])
    return DatasetRecord(**values), True  # type: ignore[arg-type]


def _record(row: sa.Row[Any]) -> DatasetRecord:
    return DatasetRecord(
        id=row.id, name=row.name, content_hash=row.content_hash, row_count=row.row_count,
        labels=list(row.labels), languages=list(row.languages), encoding=row.encoding,
        size_bytes=row.size_bytes, created_at=row.created_at,
    )


def find_dataset(connection: sa.Connection, reference: str) -> DatasetRecord:
    """Return the dataset with id `reference`, or the newest one named `reference`."""
    query = sa.select(eval_datasets)
    try:
        query = query.where(eval_datasets.c.id == uuid.UUID(reference))
    except ValueError:
        query = query.where(eval_datasets.c.name == reference)
    row = connection.execute(query.order_by(eval_datasets.c.created_at.desc())).first()
    if row is None:
        raise DatasetNotFoundError(
            f"dataset {reference!r} not found; upload it with "
            "'q2q eval upload FILE.csv --name NAME' or list datasets with 'q2q eval datasets'"
        )
    return _record(row)


def list_datasets(connection: sa.Connection) -> list[DatasetRecord]:
    query = sa.select(eval_datasets).order_by(eval_datasets.c.created_at.desc())
    return [_record(row) for row in connection.execute(query)]


def read_examples(connection: sa.Connection, dataset_id: uuid.UUID) -> list[Example]:
    query = (
        sa.select(eval_rows)
        .where(eval_rows.c.dataset_id == dataset_id)
        .order_by(eval_rows.c.position)
    )
    return [
        Example(line=row.line, text=row.text, language=row.language, labels=dict(row.labels))
        for row in connection.execute(query)
    ]
