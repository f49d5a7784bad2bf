"""Parsing and storing evaluation datasets: encodings, CSV quoting, bad rows, all or nothing."""

from __future__ import annotations

import codecs
import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from registry_state import datasets
from registry_state.datasets import DatasetError, parse_dataset
from registry_state.tables_eval import eval_datasets, eval_rows
from registry_state.taxonomy import Taxonomy, ThresholdKind

TAXONOMY = Taxonomy(
    thresholds=(
        ("confidence_increase", ThresholdKind.PROBABILITY),
        ("risk_min_cues", ThresholdKind.COUNT),
    )
)
HEADER = "text,language,confidence_increase,risk_min_cues"
NOW = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)


def parse(text: str | bytes, **options: Any) -> datasets.ParsedDataset:
    content = text.encode() if isinstance(text, str) else text
    return parse_dataset(content, source="data.csv", taxonomy=TAXONOMY, **options)


def problems_of(text: str | bytes, **options: Any) -> list[str]:
    with pytest.raises(DatasetError) as raised:
        parse(text, **options)
    return raised.value.problems


def test_parse_rows_and_lines() -> None:
    parsed = parse(f"{HEADER}\nI feel great,en,1,0\nEstoy solo,es,0,1\n")
    assert [e.line for e in parsed.examples] == [2, 3]
    assert parsed.examples[1].labels == {"confidence_increase": 0, "risk_min_cues": 1}
    assert parsed.languages == ["en", "es"]
    assert parsed.encoding == "utf-8"


def test_bom_gives_same_hash() -> None:
    text = f"{HEADER}\nI feel great,en,1,0\n"
    plain = parse(text)
    with_bom = parse(codecs.BOM_UTF8 + text.encode())
    assert with_bom.examples == plain.examples
    assert with_bom.content_hash == plain.content_hash


def test_crlf_line_endings() -> None:
    parsed = parse(f"{HEADER}\r\nI feel great,en,1,0\r\nAgain,en,0,0\r\n")
    assert [e.text for e in parsed.examples] == ["I feel great", "Again"]


def test_quoted_newlines_and_doubled_quotes() -> None:
    text = (f'{HEADER}\n"First line\nsecond line, with a comma",en,1,0\n'
            '"She said ""hello""",en,0,0\n')
    parsed = parse(text)
    assert parsed.examples[0].text == "First line\nsecond line, with a comma"
    assert parsed.examples[1].text == 'She said "hello"'
    assert [e.line for e in parsed.examples] == [2, 4]


def test_bad_row_after_multiline_field_names_its_line() -> None:
    text = f'{HEADER}\n"one\ntwo\nthree",en,1,0\nok,en,2,0\n'
    assert problems_of(text) == [
        "line 5: confidence_increase: invalid value '2'; allowed values: 0, 1"
    ]


def test_windows_1252_rejected_with_name() -> None:
    content = f"{HEADER}\nJ'ai réussi,fr,1,0\n".encode("cp1252")
    problems = problems_of(content)
    assert problems == [
        "line 2: byte 0xe9 is not valid UTF-8; the file looks like Windows-1252 or "
        "ISO-8859-1. Save it as UTF-8, or pass --encoding cp1252 to read it as it is"
    ]


def test_declared_encoding_decodes() -> None:
    text = f"{HEADER}\nJ'ai réussi,fr,1,0\n"
    declared = parse(text.encode("cp1252"), encoding="cp1252")
    assert declared.examples[0].text == "J'ai réussi"
    assert declared.encoding == "cp1252"
    assert declared.content_hash == parse(text).content_hash


def test_utf16_rejected_with_name() -> None:
    content = f"{HEADER}\nhello,en,1,0\n".encode("utf-16")
    problem = problems_of(content)[0]
    assert problem.startswith("the file is encoded as UTF-16 LE, not UTF-8.")
    assert problem.endswith("pass --encoding utf-16 to read it as it is")
    assert parse(content, encoding="utf-16").examples[0].text == "hello"


def test_unknown_encoding_name() -> None:
    assert problems_of(f"{HEADER}\n", encoding="klingon")[0].startswith(
        "unknown encoding 'klingon'")


def test_invalid_rows_each_named() -> None:
    text = (f"{HEADER}\n"
            "fine,en,1,0\n"
            "too,many,fields,1,0\n"
            ",en,1,0\n"
            "hello,english!,0,1\n"
            "hello,en,1,yes\n")
    assert problems_of(text) == [
        "line 3: expected 4 fields, found 5; quote a field that contains a comma",
        "line 4: text: the text is empty",
        "line 5: language: invalid value 'english!'; use a language tag such as en, es or "
        "pt-BR",
        "line 6: risk_min_cues: invalid value 'yes'; allowed values: 0, 1",
    ]


def test_header_problems() -> None:
    problems = problems_of("text,langauge,confidence_increase\nhi,en,1\n")
    assert problems == [
        "line 1: unknown column 'langauge'; did you mean 'language'?",
        "line 1: missing columns: language, risk_min_cues; the header must have text, "
        "language and one 0/1 column per taxonomy label",
    ]


def test_empty_and_header_only() -> None:
    assert problems_of("")[0].startswith("the file is empty")
    assert problems_of(f"{HEADER}\n") == ["the file has a header but no rows"]


def test_size_limit() -> None:
    problem = problems_of(f"{HEADER}\nhello,en,1,0\n", max_bytes=10)[0]
    assert problem.startswith("the file has 61 bytes, more than the limit of 10")


def test_error_message_lists_problems() -> None:
    with pytest.raises(DatasetError) as raised:
        parse(f"{HEADER}\nhello,en,1,7\n")
    assert str(raised.value) == (
        "data.csv: line 2: risk_min_cues: invalid value '7'; allowed values: 0, 1\n"
        "Nothing was stored; fix the file and run 'q2q eval upload' again."
    )


# --- storage, on SQLite and PostgreSQL -----------------------------------------------------


def count_rows(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        return (connection.scalar(sa.select(sa.func.count()).select_from(eval_datasets)) or 0,
                connection.scalar(sa.select(sa.func.count()).select_from(eval_rows)) or 0)


def test_store_and_read_back(engine: sa.Engine) -> None:
    parsed = parse(f'{HEADER}\n"Multi\nline ""quoted""",en,1,0\nEstoy solo,es,0,1\n')
    with engine.begin() as connection:
        record, created = datasets.store_dataset(connection, parsed, name="v3", now=NOW)
    assert created
    with engine.connect() as connection:
        found = datasets.find_dataset(connection, "v3")
        by_id = datasets.find_dataset(connection, str(record.id))
        examples = datasets.read_examples(connection, record.id)
    assert found == record == by_id
    assert found.content_hash == parsed.content_hash
    assert examples == list(parsed.examples)


def test_same_content_same_name_not_duplicated(engine: sa.Engine) -> None:
    parsed = parse(f"{HEADER}\nhello,en,1,0\n")
    with engine.begin() as connection:
        first, _ = datasets.store_dataset(connection, parsed, name="v3", now=NOW)
    with engine.begin() as connection:
        second, created = datasets.store_dataset(connection, parsed, name="v3", now=NOW)
    assert not created
    assert second.id == first.id
    assert count_rows(engine) == (1, 1)


def test_failed_store_leaves_nothing(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = "".join(f"row {i},en,{i % 2},0\n" for i in range(5))
    parsed = parse(f"{HEADER}\n{rows}")
    monkeypatch.setattr(datasets, "_INSERT_BATCH", 2)
    with engine.connect() as connection:
        real_execute = connection.execute
        batches = 0

        def failing_execute(statement: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal batches
            if getattr(statement, "table", None) is eval_rows:
                batches += 1
                if batches == 2:
                    raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))
            return real_execute(statement, *args, **kwargs)

        monkeypatch.setattr(connection, "execute", failing_execute)
        with pytest.raises(sa.exc.OperationalError), connection.begin():
            datasets.store_dataset(connection, parsed, name="v3", now=NOW)
    assert count_rows(engine) == (0, 0)


def test_unknown_dataset_message(engine: sa.Engine) -> None:
    with engine.connect() as connection, pytest.raises(datasets.DatasetNotFoundError) as raised:
        datasets.find_dataset(connection, "nope")
    assert str(raised.value) == (
        "dataset 'nope' not found; upload it with 'q2q eval upload FILE.csv --name NAME' "
        "or list datasets with 'q2q eval datasets'"
    )
