"""Validate classifier predictions before they are stored.

Input: one mapping per prediction, from the JSON body of `POST /q2q/predictions`
or one line of a JSON Lines or CSV file. Output: a `PredictionRow` tuple in
the column order of the predictions table, or `InvalidPredictionError` naming
the line, the field, the bad value and what is allowed. Field names may be
written in snake_case (`model_id`, files) or camelCase (`modelId`, the API).

Validation is a plain function rather than a pydantic model because an import
checks millions of rows; `prediction_store` writes what this returns.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from registry_state.errors import Q2QError
from registry_state.spec import PROVIDERS

FIELDS = ("model_id", "provider", "language", "label", "score", "positive", "created_at",
          "request_id")
REQUIRED = frozenset(FIELDS) - {"score"}
_CAMEL = {"modelId": "model_id", "createdAt": "created_at", "requestId": "request_id"}
_MAX_LENGTH = {"model_id": 100, "provider": 50, "language": 10, "label": 50, "request_id": 100}
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


class InvalidPredictionError(Q2QError):
    """A prediction row is invalid; nothing of its batch or file was stored."""

    def __init__(self, message: str, *, line: int | None = None, field: str = "") -> None:
        where = f"line {line}: " if line is not None else ""
        what = f"{field}: " if field else ""
        super().__init__(f"{where}{what}{message}")
        self.line = line
        self.field = field
        self.detail = message


class PredictionRow(NamedTuple):
    model_id: str
    provider: str
    language: str
    label: str
    score: float | None
    positive: bool
    created_at: dt.datetime
    request_id: str


def parse_created_at(value: Any) -> dt.datetime:
    """Parse an ISO 8601 datetime with a UTC offset into an aware UTC datetime."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO 8601 datetime; write it like 2025-11-13T10:30:00Z"
            ) from None
    else:
        raise ValueError(f"expected an ISO 8601 datetime string, got {value!r}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset; append 'Z' for UTC")
    return parsed.astimezone(dt.UTC)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    text = value.strip()
    if len(text) > _MAX_LENGTH[name]:
        raise ValueError(f"{text[:20]!r}... is {len(text)} characters, more than the "
                         f"{_MAX_LENGTH[name]} allowed")
    return text


def _score(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a number in [0, 1] or nothing, got {value!r}")
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number in [0, 1] or nothing, got {value!r}") from None
    if math.isnan(score) or not 0 <= score <= 1:
        raise ValueError(f"score {value!r} is outside [0, 1]")
    return score


def _positive(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"expected true or false, got {value!r}")


def parse_prediction(data: Any, *, line: int | None = None) -> PredictionRow:
    """Validate one prediction mapping; raise `InvalidPredictionError` for the first problem."""
    if not isinstance(data, Mapping):
        raise InvalidPredictionError(f"expected an object with the fields {', '.join(FIELDS)}, "
                                     f"got {type(data).__name__}", line=line)
    values = {_CAMEL.get(str(key), str(key)): value for key, value in data.items()}
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise InvalidPredictionError(f"unknown field; allowed fields: {', '.join(FIELDS)}",
                                     line=line, field=unknown[0])
    missing = sorted(REQUIRED - {key for key, value in values.items()
                                 if value is not None and value != ""})
    if missing:
        raise InvalidPredictionError("missing required field", line=line, field=missing[0])

    name = "model_id"
    try:
        model_id = _text(name, values[name])
        name = "provider"
        provider = _text(name, values[name])
        if provider not in PROVIDERS:
            raise ValueError(f"invalid value {provider!r}; allowed values: "
                             f"{', '.join(PROVIDERS)}")
        name = "language"
        language = _text(name, values[name])
        name = "label"
        label = _text(name, values[name])
        name = "score"
        score = _score(values.get(name))
        name = "positive"
        positive = _positive(values[name])
        name = "created_at"
        created_at = parse_created_at(values[name])
        name = "request_id"
        request_id = _text(name, values[name])
    except ValueError as error:
        raise InvalidPredictionError(str(error), line=line, field=name) from None
    return PredictionRow(model_id, provider, language, label, score, positive, created_at,
                         request_id)
