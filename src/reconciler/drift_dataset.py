"""Label shares of an evaluation dataset, as the baseline of a drift policy.

Input: a CSV or JSON Lines file committed in the models repository, one row per
labelled example and label, with the fields `label`, `language` and `positive`
(true or false). Output: the shares [positive, negative] per (label, language).
`reconciler.drift_check` calls `dataset_shares` for a policy whose baseline is
`evaluation_dataset: PATH`.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from reconciler.git_source import GitSource
from registry_state.errors import Q2QError

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class DatasetError(Q2QError):
    """The evaluation dataset of a drift baseline is missing or has an invalid row."""


def _rows(path: str, text: str) -> list[tuple[int, dict[str, Any]]]:
    if path.endswith((".jsonl", ".ndjson")):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as error:
                raise DatasetError(f"{path}:{number}: invalid JSON ({error.msg})") from None
        return rows
    if path.endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        return [(number, row) for number, row in enumerate(reader, start=2)]
    raise DatasetError(f"{path}: unsupported dataset format; use a .csv or .jsonl file")


def _positive(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def dataset_shares(
    source: GitSource, revision: str, path: str
) -> dict[tuple[str, str], list[float]]:
    """Return [positive share, negative share] per (label, language) of a dataset file."""
    content = source.read_file(revision, path)
    if content is None:
        raise DatasetError(
            f"evaluation dataset '{path}' not found at revision {revision[:12]}; commit it or "
            "fix baseline.evaluation_dataset in policies/drift.yaml"
        )
    counts: dict[tuple[str, str], list[int]] = {}
    for number, row in _rows(path, content.decode("utf-8-sig")):
        if not isinstance(row, dict):
            raise DatasetError(f"{path}:{number}: expected an object with label, language and "
                               "positive")
        label, language = row.get("label"), row.get("language")
        positive = _positive(row.get("positive"))
        if not label or not language or positive is None:
            raise DatasetError(
                f"{path}:{number}: each row needs label, language and positive (true or "
                f"false), got {row!r}"
            )
        pair = counts.setdefault((str(label), str(language)), [0, 0])
        pair[0 if positive else 1] += 1
    return {key: [pos / (pos + neg), neg / (pos + neg)] for key, (pos, neg) in counts.items()}
