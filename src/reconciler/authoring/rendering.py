"""Write single values as YAML text for splicing into a spec file.

`render_scalar` keeps the quoting style of the value it replaces where the new
value allows it; `render_flow` writes a small mapping on one line. `edits`
calls both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from registry_state import yaml_source


def render_scalar(value: Any, *, style: str | None = None) -> str:
    """Write a value as YAML, in the quoting style of the value it replaces where possible."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value is None:
        return "null"
    text = str(value)
    if style == "'" and "\n" not in text:
        return "'" + text.replace("'", "''") + "'"
    if style is None and _plain_is_safe(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def render_flow(value: Mapping[str, Any]) -> str:
    """Write a mapping of plain values as a one-line flow mapping."""
    return "{" + ", ".join(f"{key}: {render_scalar(item)}" for key, item in value.items()) + "}"


def _plain_is_safe(text: str) -> bool:
    """Return True if `text` written without quotes loads back as the same string."""
    if not text or text != text.strip() or "\n" in text:
        return False
    try:
        loaded = yaml_source.load(f"value: {text}\n".encode())
    except yaml_source.YamlSourceError:
        return False
    return bool(loaded == {"value": text})
