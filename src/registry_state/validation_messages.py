"""Turn pydantic validation errors into positioned `Problem`s a person can act on.

Callers pass the file's content so each problem gets the line and column of
the offending key or value; the messages name the field, show the bad value,
list the allowed values and suggest a spelling for unknown keys.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from registry_state import yaml_source
from registry_state.errors import Problem

_PATTERN_HINTS = {
    "id": "use lowercase letters, digits, dots and hyphens, starting with a letter or digit, "
    "such as q2q-claude-v2-multilingual",
    "prompt_version": "write it as v<major>.<minor> or v<major>.<minor>.<patch>, such as v2.0",
}


def field_path(loc: Sequence[str | int]) -> str:
    """Render a location such as ("models", 1, "thresholds") as models[1].thresholds."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _known_fields(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Return the field names allowed in the mapping that contains `loc`'s last key."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = field.annotation
    return list(getattr(current, "model_fields", {}))


def _message(error: Any, model: type[BaseModel], loc: Sequence[str | int]) -> str:
    kind = error["type"]
    value = error.get("input")
    name = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        known = [f for f in _known_fields(model, loc) if not f.startswith("_")]
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else f"; allowed fields: {', '.join(known)}"
        return f"unknown field '{name}'{hint}"
    if kind == "missing":
        return f"missing required field '{name}'"
    if kind == "bool_type":
        if isinstance(value, str):
            return (f"expected true or false, got {value!r}, a string: YAML 1.2 reads only "
                    "unquoted true and false as booleans")
        return f"expected true or false, got {value!r}"
    if kind == "string_type" and name in _PATTERN_HINTS:
        return f"expected a string, got {value!r}; {_PATTERN_HINTS[name]}"
    if kind == "literal_error":
        allowed = error.get("ctx", {}).get("expected", "")
        return f"invalid value {value!r}; allowed values: {allowed}"
    if kind == "string_pattern_mismatch":
        hint = _PATTERN_HINTS.get(name, f"it must match {error['ctx']['pattern']}")
        return f"invalid value {value!r}; {hint}"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"expected a mapping of fields, got {_type_name(value)}"
    message = str(error["msg"])
    message = message[0].lower() + message[1:]
    if value is not None and not isinstance(value, dict | list):
        return f"{message}, got {value!r}"
    return message


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def problems_from_error(
    error: ValidationError,
    *,
    model: type[BaseModel],
    path: str,
    content: bytes,
    prefix: Sequence[str | int] = (),
) -> list[Problem]:
    """Convert one `ValidationError` into problems positioned in `content`."""
    problems = []
    for item in _dedupe(error.errors(include_url=False)):
        loc = tuple(part for part in item["loc"] if not _is_union_branch(part))
        full = (*prefix, *loc)
        at_key = item["type"] in {"extra_forbidden"}
        position = yaml_source.locate(content, full, key=at_key)
        problems.append(
            Problem(
                path=path,
                line=position.line if position else None,
                column=position.column if position else None,
                field=field_path(full),
                message=_message(item, model, loc),
            )
        )
    return problems


def _is_union_branch(part: str | int) -> bool:
    # Pydantic adds the branch type of a union ("float", "int") to the location.
    return part in {"float", "int", "str", "function-before[parse_effective_from(), datetime]"}


def _dedupe(errors: Iterable[Any]) -> list[Any]:
    """Keep one error per location: a union reports each branch separately."""
    seen: dict[tuple[Any, ...], Any] = {}
    for item in errors:
        loc = tuple(part for part in item["loc"] if not _is_union_branch(part))
        if loc in seen:
            continue
        seen[loc] = item
    return list(seen.values())
