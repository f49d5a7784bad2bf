"""Round-trip edits of spec files that leave every byte they do not change as it was.

A `SpecText` is one spec file: a single spec, or a mapping with a `models:`
list as in the governance guide's models.yaml. `with_value` replaces the text
of one value (an `active`, an `effective_from`, one threshold), and
`with_copy` appends a copy of one `models:` item to the list. Nothing else in
the file moves: comments, key order, quoting, anchors, flow style and the
spelling of untouched values stay byte for byte.

ruamel.yaml's round-trip parser gives the position of each value
(`yaml_nodes`); the edit is a splice of that span. Dumping a whole ruamel
document instead would re-indent sequences, realign comments and respace flow
collections. Each edit is checked by loading the new text with the product's
loader and comparing it with the old data plus the intended change, so an edit
that would also change a value shared through an anchor is rejected.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.authoring.yaml_nodes import (
    NodeKind,
    YamlNode,
    content_end,
    content_start,
    parse_nodes,
)
from registry_state import yaml_source
from registry_state.errors import SpecEditError

FieldPath = tuple[str, ...]
"""A field of a spec, such as ("active",) or ("thresholds", "risk_min_cues")."""

_BOM = "\ufeff"


@dataclass(frozen=True)
class SpecEntry:
    """One spec in a file: its id, its index in the `models:` list (None if alone) and line."""

    spec_id: str
    index: int | None
    line: int


def dotted(path: FieldPath) -> str:
    return ".".join(path)


class SpecText:
    """The text of one spec file and the position of every spec in it."""

    def __init__(self, path: str, content: bytes) -> None:
        self.path = path
        self.content = content
        try:
            self.data = yaml_source.load(content)
        except yaml_source.YamlSourceError as error:
            line = f":{error.line}" if error.line else ""
            raise SpecEditError(
                f"{path}{line}: {error.message}; run 'q2q validate' and fix the file first"
            ) from None
        decoded = content.decode("utf-8")
        self._bom = _BOM if decoded.startswith(_BOM) else ""
        self.text = decoded.removeprefix(_BOM)
        self.newline = "\r\n" if "\r\n" in self.text else "\n"
        self.root = parse_nodes(self.text, path=path)
        self.entries = self._entries()

    @property
    def is_models_list(self) -> bool:
        data = self.data
        return isinstance(data, dict) and "models" in data and "id" not in data

    def _entries(self) -> list[SpecEntry]:
        if self.root is None or self.root.kind is not NodeKind.MAPPING:
            return []
        if not self.is_models_list:
            spec_id = self.data.get("id")
            return [SpecEntry(str(spec_id), None, 1)] if spec_id is not None else []
        pair = self.root.pair("models")
        items = self.data["models"]
        if pair is None or pair[1].kind is not NodeKind.SEQUENCE or not isinstance(items, list):
            return []
        return [
            SpecEntry(str(item.get("id")), index, node.line)
            for index, (item, node) in enumerate(zip(items, pair[1].items, strict=True))
            if isinstance(item, dict)
        ]

    def find(self, spec_id: str) -> SpecEntry | None:
        for entry in self.entries:
            if entry.spec_id == spec_id:
                return entry
        return None

    def spec_data(self, entry: SpecEntry) -> dict[str, Any]:
        """Return the loaded values of one spec, merge keys resolved."""
        if entry.index is None:
            spec: dict[str, Any] = self.data
        else:
            spec = self.data["models"][entry.index]
        return spec

    def _models_sequence(self) -> YamlNode:
        assert self.root is not None
        pair = self.root.pair("models")
        assert pair is not None
        return pair[1]

    def _spec_node(self, entry: SpecEntry) -> YamlNode:
        assert self.root is not None
        if entry.index is None:
            return self.root
        node = self._models_sequence().items[entry.index]
        if node.kind is not NodeKind.MAPPING:
            raise SpecEditError(
                f"{self.path}:{entry.line}: '{entry.spec_id}' is written through an alias; "
                "write the spec out in full to edit it"
            )
        return node

    def encode(self, text: str) -> bytes:
        return (self._bom + text).encode("utf-8")

    # --- replacing one value ----------------------------------------------------------

    def with_value(self, entry: SpecEntry, path: FieldPath, value: Any) -> SpecText:
        """Return the file with `path` of one spec set to `value`, all other bytes kept."""
        text = self._replace(self._spec_node(entry), (), path, value, entry)
        expected = copy.deepcopy(self.data)
        _assign(expected if entry.index is None else expected["models"][entry.index],
                path, value)
        action = f"set {dotted(path)} of '{entry.spec_id}'"
        return self._checked(text, expected, entry=entry, action=action)

    def _replace(
        self, mapping: YamlNode, prefix: FieldPath, path: FieldPath, value: Any,
        entry: SpecEntry,
    ) -> str:
        """Splice `value` in at `path` below `mapping`, which sits at `prefix` in the spec."""
        key, rest = path[0], path[1:]
        pair = mapping.pair(key)
        if pair is None:
            current = _lookup(self.spec_data(entry), (*prefix, key))
            return self._insert(mapping, key, _with_change(current, rest, value), entry)
        _key_node, node = pair
        if rest and node.kind is NodeKind.MAPPING and not node.flow:
            return self._replace(node, (*prefix, key), rest, value, entry)
        if rest and node.kind is NodeKind.MAPPING:
            inner = node.pair(rest[0])
            if inner is not None and len(rest) == 1 and inner[1].kind is NodeKind.SCALAR:
                return self._splice(inner[1], render_scalar(value, style=inner[1].style))
        if rest:
            # An alias, or a flow mapping without the key: write the whole mapping out.
            current = _lookup(self.spec_data(entry), (*prefix, key))
            return self._splice(node, render_flow(_with_change(current, rest, value)),
                                whole=True)
        if node.kind is NodeKind.SCALAR:
            return self._splice(node, render_scalar(value, style=node.style))
        if node.kind is NodeKind.ALIAS:
            return self._splice(node, render_scalar(value), whole=True)
        raise SpecEditError(
            f"{self.path}:{node.line}: {dotted((*prefix, *path))} of '{entry.spec_id}' is a "
            f"{node.kind.value}, not a single value; edit it by hand"
        )

    def _splice(self, node: YamlNode, rendered: str, *, whole: bool = False) -> str:
        start = node.start if whole else content_start(self.text, node)
        end = content_end(self.text, node)
        return self.text[:start] + rendered + self.text[end:]

    def _insert(self, mapping: YamlNode, key: str, value: Any, entry: SpecEntry) -> str:
        """Add `key: value` as a new last line of a block mapping, at its keys' indent."""
        if mapping.flow or not mapping.pairs:
            raise SpecEditError(
                f"{self.path}:{mapping.line}: '{entry.spec_id}' has no '{key}:' of its own and "
                f"is written in flow style; add '{key}:' by hand"
            )
        first_key = mapping.pairs[0][0]
        indent = " " * (first_key.start - _line_start(self.text, first_key.start))
        last_value = mapping.pairs[-1][1]
        at = _line_end(self.text, content_end(self.text, last_value))
        rendered = render_flow(value) if isinstance(value, Mapping) else render_scalar(value)
        line = f"{self.newline}{indent}{key}: {rendered}"
        return self.text[:at] + line + self.text[at:]

    # --- copying a models: item -------------------------------------------------------

    def with_copy(self, entry: SpecEntry) -> tuple[SpecText, SpecEntry]:
        """Append a copy of one `models:` item to the list, without its anchors.

        The copy keeps the item's comments and layout. Anchors are dropped so the
        file does not define one twice; aliases in the copy still refer to the
        original anchors, which come earlier in the file.
        """
        if entry.index is None:
            raise SpecEditError(f"{self.path}: a single-spec file is copied as a whole file")
        sequence = self._models_sequence()
        if sequence.flow:
            raise SpecEditError(
                f"{self.path}:{sequence.line}: the 'models:' list is in flow style [...]; "
                "copy the spec by hand"
            )
        item = sequence.items[entry.index]
        dash = item.start - 1
        while dash >= 0 and self.text[dash] in " \t\r\n":
            dash -= 1
        line_start = _line_start(self.text, dash)
        if dash < 0 or self.text[dash] != "-" or self.text[line_start:dash].strip():
            raise SpecEditError(
                f"{self.path}:{item.line}: cannot find the '-' that starts '{entry.spec_id}'; "
                "copy the spec by hand"
            )
        item_end = _line_end(self.text, content_end(self.text, item))
        item_text = _without_anchors(self.text, item, start=line_start, end=item_end)

        at = _line_end(self.text, content_end(self.text, sequence.items[-1]))
        text = self.text[:at] + self.newline + item_text + self.text[at:]
        expected = copy.deepcopy(self.data)
        expected["models"].append(copy.deepcopy(expected["models"][entry.index]))
        copied = self._checked(text, expected, entry=entry, action=f"copy '{entry.spec_id}'")
        return copied, copied.entries[-1]

    # --- checking the result ----------------------------------------------------------

    def _checked(self, text: str, expected: Any, *, entry: SpecEntry, action: str) -> SpecText:
        """Return the edited file if it loads as `expected`, else raise `SpecEditError`."""
        where = f"{self.path}:{entry.line}"
        try:
            edited = SpecText(self.path, self.encode(text))
        except SpecEditError as error:
            raise SpecEditError(
                f"{where}: cannot {action}, because the edited file would not load ({error}); "
                "edit it by hand"
            ) from None
        if edited.data != expected:
            raise SpecEditError(
                f"{where}: cannot {action} without also changing other values, because the "
                "value is shared through an anchor ('&') or a merge key ('<<'); write the "
                "value into this spec by hand, then run 'q2q validate'"
            )
        return edited


def _line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, max(offset, 0)) + 1


def _line_end(text: str, offset: int) -> int:
    """Return the offset of the line break that ends the line holding `offset`."""
    end = text.find("\n", offset)
    if end < 0:
        return len(text)
    return end - 1 if end > 0 and text[end - 1] == "\r" else end


def _without_anchors(text: str, item: YamlNode, *, start: int, end: int) -> str:
    removals: list[tuple[int, int]] = []
    for node in item.walk():
        if node.anchor is None:
            continue
        token = f"&{node.anchor}"
        at = text.find(token, _line_start(text, node.start), end)
        if at < 0:
            raise SpecEditError(f"cannot find the anchor {token} of line {node.line} to drop it")
        after = at + len(token)
        if after < len(text) and text[after] in "\r\n":
            while at > start and text[at - 1] in " \t":
                at -= 1
        else:
            while after < len(text) and text[after] in " \t":
                after += 1
        removals.append((at, after))
    pieces = []
    position = start
    for removal_start, removal_end in sorted(removals):
        pieces.append(text[position:removal_start])
        position = removal_end
    pieces.append(text[position:end])
    return "".join(pieces)


def _lookup(data: Mapping[str, Any], path: FieldPath) -> Any:
    value: Any = data
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _assign(data: dict[str, Any], path: FieldPath, value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def _with_change(current: Any, rest: FieldPath, value: Any) -> Any:
    if not rest:
        return value
    changed = dict(current) if isinstance(current, Mapping) else {}
    changed[rest[0]] = _with_change(changed.get(rest[0]), rest[1:], value)
    return changed


# --- rendering values -----------------------------------------------------------------


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
