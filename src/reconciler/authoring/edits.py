"""Round-trip edits of spec files that leave every byte they do not change as it was.

A `SpecText` is one spec file: a single spec, or a mapping with a `models:`
list as in the governance guide's models.yaml. `with_value` replaces the text
of one value (an `active`, an `effective_from`, one threshold), and
`with_copy` appends a copy of one `models:` item to the list. Nothing else in
the file moves: comments, key order, quoting, anchors, flow style and the
spelling of untouched values stay byte for byte.

ruamel.yaml's round-trip parser gives the position of each value
(`yaml_nodes`), and the edit is a splice of that span. Dumping a whole ruamel
document instead would re-indent sequences, realign comments and respace flow
collections. A value that a spec shares through an alias or a merge key is
first written out in the spec (the shared original stays as it is), then
edited. Each edit is checked by loading the new text with the product's
loader and comparing it with the old data plus the intended change, so an edit
that would also change another spec is rejected.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.authoring.rendering import render_flow, render_scalar
from reconciler.authoring.yaml_nodes import (
    NodeKind,
    YamlNode,
    block_lines,
    column,
    content_end,
    content_start,
    line_end,
    line_start,
    parse_nodes,
    text_without_anchors,
)
from registry_state import yaml_source
from registry_state.errors import SpecEditError

FieldPath = tuple[str, ...]
"""A field of a spec, such as ("active",) or ("thresholds", "risk_min_cues")."""

MERGE_KEY = "<<"
DEFAULT_INDENT_STEP = 2
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

    def _same_entry(self, entry: SpecEntry) -> SpecEntry:
        """Return this text's entry at the position of `entry` from an earlier version."""
        for candidate in self.entries:
            if candidate.index == entry.index:
                return candidate
        raise SpecEditError(
            f"{self.path}: cannot find '{entry.spec_id}' again after editing; edit the file by hand"
        )

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

    def line_of(self, entry: SpecEntry, path: FieldPath) -> int:
        """Return the line of the value at `path`, or of the closest parent written in place."""
        node = self._spec_node(entry)
        for key in path:
            pair = node.pair(key) if node.kind is NodeKind.MAPPING else None
            if pair is None:
                break
            node = pair[1]
        return node.line

    def encode(self, text: str) -> bytes:
        return (self._bom + text).encode("utf-8")

    # --- replacing one value ----------------------------------------------------------

    def with_value(self, entry: SpecEntry, path: FieldPath, value: Any) -> SpecText:
        """Return the file with `path` of one spec set to `value`, all other bytes kept."""
        written_out = self._written_out(entry, path)
        if written_out is not None:
            return written_out.with_value(written_out._same_entry(entry), path, value)
        text = self._replace(self._spec_node(entry), (), path, value=value, entry=entry)
        expected = copy.deepcopy(self.data)
        _assign(expected if entry.index is None else expected["models"][entry.index],
                path, value)
        action = f"set {dotted(path)} of '{entry.spec_id}'"
        return self._checked(text, expected, entry=entry, action=action)

    def _replace(
        self, mapping: YamlNode, prefix: FieldPath, path: FieldPath, *, value: Any,
        entry: SpecEntry,
    ) -> str:
        """Splice `value` in at `path` below `mapping`, which sits at `prefix` in the spec."""
        key, rest = path[0], path[1:]
        pair = mapping.pair(key)
        if pair is None:
            current = _lookup(self.spec_data(entry), (*prefix, key))
            return self._insert(mapping, key, value=_with_change(current, rest, value),
                                entry=entry)
        _key_node, node = pair
        if rest and node.kind is NodeKind.MAPPING and not node.flow:
            return self._replace(node, (*prefix, key), rest, value=value, entry=entry)
        if rest and node.kind is NodeKind.MAPPING:
            inner = node.pair(rest[0])
            if inner is not None and len(rest) == 1 and inner[1].kind is NodeKind.SCALAR:
                return self._splice(inner[1], render_scalar(value, style=inner[1].style))
        if rest:
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

    def _insert(self, mapping: YamlNode, key: str, *, value: Any, entry: SpecEntry) -> str:
        """Add `key: value` as a new last line of a block mapping, at its keys' indent."""
        if mapping.flow or not mapping.pairs:
            raise SpecEditError(
                f"{self.path}:{mapping.line}: '{entry.spec_id}' has no '{key}:' of its own and "
                f"is written in flow style; add '{key}:' by hand"
            )
        indent = " " * column(self.text, mapping.pairs[0][0].start)
        at = line_end(self.text, content_end(self.text, mapping.pairs[-1][1]))
        rendered = render_flow(value) if isinstance(value, Mapping) else render_scalar(value)
        line = f"{self.newline}{indent}{key}: {rendered}"
        return self.text[:at] + line + self.text[at:]

    # --- writing out shared mappings --------------------------------------------------

    def _written_out(self, entry: SpecEntry, path: FieldPath) -> SpecText | None:
        """Return the file with the mapping that contains `path` copied into the spec.

        A mapping the spec takes from an alias (`thresholds: *base`) or a merge
        key (`<<: *defaults`) is written out where the spec uses it, keeping its
        layout, comments and number spellings. None means nothing is shared.
        """
        mapping = self._spec_node(entry)
        for key in path[:-1]:
            if mapping.flow:
                # Block lines cannot go inside {...}; `_replace` writes a flow mapping.
                return None
            pair = mapping.pair(key)
            if pair is None:
                source = self._merged_value(mapping, key)
                if source is None:
                    return None
                text = self._insert_copy(mapping, key, source=source)
                break
            key_node, node = pair
            if node.kind is NodeKind.ALIAS:
                source = self._anchored(node)
                if source is None or source.kind is not NodeKind.MAPPING:
                    return None
                text = self._replace_alias(key_node, node, source=source)
                break
            if node.kind is not NodeKind.MAPPING:
                return None
            mapping = node
        else:
            return None
        return self._checked(text, self.data, entry=entry,
                             action=f"write out {key} of '{entry.spec_id}'")

    def _anchored(self, alias: YamlNode) -> YamlNode | None:
        """Return the node an alias refers to: the last anchor of that name before it."""
        assert self.root is not None
        found = None
        for node in self.root.walk():
            if node.start >= alias.start:
                break
            if node.anchor == alias.value:
                found = node
        return found

    def _merged_value(self, mapping: YamlNode, key: str) -> YamlNode | None:
        """Return the node that a merge key ('<<') of `mapping` gives `key`, if any."""
        pair = mapping.pair(MERGE_KEY)
        if pair is None:
            return None
        merged = pair[1]
        sources = merged.items if merged.kind is NodeKind.SEQUENCE else [merged]
        for source in sources:
            node = self._anchored(source) if source.kind is NodeKind.ALIAS else source
            if node is None or node.kind is not NodeKind.MAPPING:
                continue
            found = node.pair(key)
            if found is not None:
                value = found[1]
                return self._anchored(value) if value.kind is NodeKind.ALIAS else value
            nested = self._merged_value(node, key)
            if nested is not None:
                return nested
        return None

    def _copy_lines(self, source: YamlNode, *, indent: int) -> list[str] | None:
        """Return a block mapping's lines re-indented to `indent`, or None for a flow one."""
        if source.kind is not NodeKind.MAPPING or source.flow:
            return None
        return block_lines(self.text, source, indent=indent)

    def _inline_copy(self, source: YamlNode) -> str:
        start = content_start(self.text, source)
        return text_without_anchors(self.text, source, start=start,
                                    end=content_end(self.text, source))

    def _indent_step(self, source: YamlNode) -> int:
        assert self.root is not None
        first = column(self.text, content_start(self.text, source))
        for node in self.root.walk():
            for key_node, value_node in node.pairs:
                if value_node is source and first > column(self.text, key_node.start):
                    return first - column(self.text, key_node.start)
        return DEFAULT_INDENT_STEP

    def _replace_alias(self, key_node: YamlNode, alias: YamlNode, *, source: YamlNode) -> str:
        key_column = column(self.text, key_node.start)
        lines = self._copy_lines(source, indent=key_column + self._indent_step(source))
        if lines is None:
            return self.text[:alias.start] + self._inline_copy(source) + self.text[alias.end:]
        colon = self.text.rfind(":", key_node.end, alias.start)
        end_of_line = line_end(self.text, alias.end)
        comment = self.text[alias.end:end_of_line].rstrip()
        head = self.text[:colon + 1] + comment
        return head + "".join(self.newline + line for line in lines) + self.text[end_of_line:]

    def _insert_copy(self, mapping: YamlNode, key: str, *, source: YamlNode) -> str:
        if mapping.flow or not mapping.pairs:
            raise SpecEditError(
                f"{self.path}:{mapping.line}: the mapping takes '{key}' from a merge key and is "
                f"written in flow style; add '{key}:' by hand"
            )
        key_column = column(self.text, mapping.pairs[0][0].start)
        at = line_end(self.text, content_end(self.text, mapping.pairs[-1][1]))
        lines = self._copy_lines(source, indent=key_column + self._indent_step(source))
        if lines is None:
            added = f"{self.newline}{' ' * key_column}{key}: {self._inline_copy(source)}"
        else:
            added = f"{self.newline}{' ' * key_column}{key}:" + "".join(
                self.newline + line for line in lines
            )
        return self.text[:at] + added + self.text[at:]

    # --- copying a models: item -------------------------------------------------------

    def with_copy(self, entry: SpecEntry) -> tuple[SpecText, SpecEntry]:
        """Append a copy of one `models:` item to the list, without its anchors.

        The copy keeps the item's comments and layout. Its anchors are dropped,
        because a file must not define an anchor twice. Aliases in the copy still
        refer to the original anchors, which come earlier in the file.
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
        first = line_start(self.text, dash)
        if dash < 0 or self.text[dash] != "-" or self.text[first:dash].strip():
            raise SpecEditError(
                f"{self.path}:{item.line}: cannot find the '-' that starts '{entry.spec_id}'; "
                "copy the spec by hand"
            )
        item_end = line_end(self.text, content_end(self.text, item))
        item_text = text_without_anchors(self.text, item, start=first, end=item_end)

        at = line_end(self.text, content_end(self.text, sequence.items[-1]))
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
