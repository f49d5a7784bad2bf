"""Safe, bounded YAML 1.2 loading with source positions for error messages.

Input is the bytes of one file of desired state; output is plain Python data
(dicts, lists, str, int, float, bool, None) or a `YamlSourceError` that names the
line and column. The spec loader, the settings loader and the CLI call it.

Parsing and composing run in libyaml through PyYAML's `CParser`, which is
several times faster than a pure-Python parser and is what lets `q2q validate`
keep up with reading the files. Two parts are our own:

- The resolver follows the YAML 1.2 core schema instead of PyYAML's YAML 1.1
  rules: `yes`, `on` and `off` stay strings, `8e-1` and `.80` are floats, and
  timestamps stay strings so the spec model can reject ones without an offset.
- The constructor rejects duplicate keys, supports `<<` merge keys, caps the
  nesting depth and counts every node it expands, aliases included, so an alias
  bomb fails after a bounded amount of work.

Positions are not kept for successful loads, which keeps memory flat on large
repositories; `locate` parses the text again to place an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from yaml._yaml import CParser
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_FILE_BYTES = 1024 * 1024
"""Largest file accepted; a spec is about 1 KB, so this leaves ample room."""

MAX_DEPTH = 32
"""Deepest nesting of mappings and sequences accepted in one document."""

MAX_NODES = 200_000
"""Most nodes one document may expand to, counting each alias use again."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


class YamlSourceError(ValueError):
    """A file is not well-formed YAML, or breaks one of the loader's limits."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


class _CoreSchemaResolver(yaml.resolver.BaseResolver):
    """Resolve plain scalars by the YAML 1.2 core schema."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012 - PyYAML declares it so


def _add(tag: str, pattern: str, first: Sequence[str | None]) -> None:
    _CoreSchemaResolver.add_implicit_resolver(tag, re.compile(pattern, re.X), list(first))


_add("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", None])
_add("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF")
_add("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789")
_add(
    "tag:yaml.org,2002:float",
    r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
    "-+.0123456789",
)
_add(_MERGE_TAG, r"^<<$", "<")

_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"
_TAG_PATTERNS: dict[str, re.Pattern[str]] = {
    tag: pattern
    for resolvers in _CoreSchemaResolver.yaml_implicit_resolvers.values()
    for tag, pattern in resolvers
}


# The resolvers that may match a plain scalar, by its first character; "" for empty.
_BY_FIRST_CHARACTER: dict[str, list[tuple[str, re.Pattern[str]]]] = {
    ("" if first is None else first): resolvers
    for first, resolvers in _CoreSchemaResolver.yaml_implicit_resolvers.items()
}


class _Composer(CParser, _CoreSchemaResolver):
    """libyaml's composer with a lean core-schema resolver.

    PyYAML's `BaseResolver.resolve` also walks path resolvers, which files of
    desired state never use; this version checks only the implicit resolvers
    of the scalar's first character, and costs a third as much per scalar.
    """

    def __init__(self, text: str) -> None:
        CParser.__init__(self, text)

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

    def resolve(self, kind: type[Node], value: str, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            if implicit[0]:
                for tag, pattern in _BY_FIRST_CHARACTER.get(value[:1], ()):
                    if pattern.match(value):
                        return tag
            return _STR_TAG
        return _SEQ_TAG if kind is SequenceNode else _MAP_TAG


def _compose(text: str) -> Node | None:
    composer = _Composer(text)
    try:
        node: Node | None = composer.get_single_node()
        return node
    except yaml.reader.ReaderError as error:
        line = text[: error.position].count("\n") + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        raise YamlSourceError(
            f"the file contains the character U+{error.character:04X}, which YAML does not "
            "allow; remove it",
            line=line,
            column=column,
        ) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or "invalid YAML"
        if "expected a single document" in str(error):
            problem = "a file holds one YAML document; remove the extra '---' section"
        raise YamlSourceError(
            problem,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as error:
        raise YamlSourceError(str(error)) from None
    finally:
        composer.dispose()


def _position(node: Node) -> dict[str, int]:
    return {"line": node.start_mark.line + 1, "column": node.start_mark.column + 1}


class _Builder:
    """Turn a composed node tree into plain data within the depth and node limits."""

    def __init__(self) -> None:
        self.nodes_seen = 0

    def build(self, node: Node, depth: int = 0) -> Any:
        self.nodes_seen += 1
        if self.nodes_seen > MAX_NODES:
            raise YamlSourceError(
                f"the document expands to more than {MAX_NODES} nodes "
                "(aliases count each time they are used); simplify the anchors",
                **_position(node),
            )
        if depth > MAX_DEPTH:
            raise YamlSourceError(
                f"nesting is deeper than {MAX_DEPTH} levels", **_position(node)
            )
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        if isinstance(node, SequenceNode):
            self._check_tag(node, _SEQ_TAG)
            return [self.build(child, depth + 1) for child in node.value]
        if isinstance(node, MappingNode):
            self._check_tag(node, _MAP_TAG)
            return self._mapping(node, depth)
        raise YamlSourceError(f"unsupported YAML node {type(node).__name__}", **_position(node))

    @staticmethod
    def _check_tag(node: Node, expected: str) -> None:
        if node.tag != expected:
            raise YamlSourceError(
                f"unsupported tag {node.tag!r}; files of desired state use plain YAML "
                "without tags",
                **_position(node),
            )

    def _scalar(self, node: ScalarNode) -> Any:
        tag, text = node.tag, node.value
        if tag in (_STR_TAG, _MERGE_TAG):  # `<<` as a value, not a key, is text
            return text
        # An explicit tag such as `!!int abc` bypasses the resolver, so check the text.
        pattern = _TAG_PATTERNS.get(tag)
        if pattern is not None and not pattern.match(text):
            kind = tag.rsplit(":", 1)[-1]
            raise YamlSourceError(f"the value {text!r} is not a valid {kind}", **_position(node))
        if tag == "tag:yaml.org,2002:null":
            return None
        if tag == "tag:yaml.org,2002:bool":
            return text.lower() == "true"
        if tag == "tag:yaml.org,2002:int":
            if text.startswith("0o"):
                return int(text[2:], 8)
            if text.startswith("0x"):
                return int(text[2:], 16)
            return int(text)
        if tag == "tag:yaml.org,2002:float":
            lowered = text.lower()
            if lowered.endswith(".inf"):
                return float("-inf") if lowered.startswith("-") else float("inf")
            if lowered == ".nan":
                return float("nan")
            return float(text)
        raise YamlSourceError(
            f"unsupported tag {tag!r}; spec files use plain YAML values without tags",
            **_position(node),
        )

    def _mapping(self, node: MappingNode, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        key_nodes: dict[Any, Node] = {}
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.update(self._merge_source(value_node, depth))
                continue
            if not isinstance(key_node, ScalarNode):
                raise YamlSourceError(
                    "a mapping key must be a plain value, not a list or mapping",
                    **_position(key_node),
                )
            key = self._scalar(key_node)
            if key in key_nodes:
                first = key_nodes[key].start_mark.line + 1
                raise YamlSourceError(
                    f"duplicate key {key!r} (first defined on line {first}); keep one of them",
                    **_position(key_node),
                )
            key_nodes[key] = key_node
            result[key] = self.build(value_node, depth + 1)
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def _merge_source(self, node: Node, depth: int) -> dict[Any, Any]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        merged: dict[Any, Any] = {}
        for source in sources:
            if not isinstance(source, MappingNode):
                raise YamlSourceError(
                    "a '<<' merge key takes a mapping or a list of mappings", **_position(source)
                )
            for key, value in self.build(source, depth + 1).items():
                merged.setdefault(key, value)
        return merged


def decode(content: bytes) -> str:
    """Decode file content as UTF-8 (a BOM is allowed), rejecting oversized or binary data."""
    if len(content) > MAX_FILE_BYTES:
        raise YamlSourceError(
            f"the file is {len(content):,} bytes, larger than the {MAX_FILE_BYTES:,}-byte "
            "limit for a file of desired state; split it into one spec per file"
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = content[: error.start].count(b"\n") + 1
        raise YamlSourceError(
            f"the file is not valid UTF-8 (byte 0x{content[error.start]:02x} at offset "
            f"{error.start}); save it as UTF-8",
            line=line,
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise YamlSourceError("the file contains a NUL byte; is it a binary file?", line=line)
    return text


def load(content: bytes) -> Any:
    """Parse one YAML document into plain data; an empty document gives None."""
    text = decode(content)
    node = _compose(text)
    if node is None:
        return None
    return _Builder().build(node)


@dataclass(frozen=True)
class Position:
    line: int
    column: int


def locate(content: bytes, path: Sequence[str | int], *, key: bool = True) -> Position | None:
    """Find the position of the value at `path` in a document, or of its closest parent.

    With `key=True` a mapping entry is placed at its key, which is where an editor
    should put the cursor for an unknown or misspelled field.
    """
    try:
        node = _compose(decode(content))
    except YamlSourceError:
        return None
    if node is None:
        return None
    best: Node = node
    for depth, segment in enumerate(path):
        found: Node | None = None
        last = depth == len(path) - 1
        if isinstance(best, MappingNode):
            for key_node, value_node in best.value:
                if isinstance(key_node, ScalarNode) and key_node.value == str(segment):
                    found = value_node
                    if key and last:
                        found = key_node
                    break
        elif isinstance(best, SequenceNode) and isinstance(segment, int) \
                and 0 <= segment < len(best.value):
            found = best.value[segment]
        if found is None:
            break
        best = found
    return Position(best.start_mark.line + 1, best.start_mark.column + 1)


def item_lines(content: bytes, list_key: str) -> list[int]:
    """Return the line of each item of the top-level list under `list_key`."""
    try:
        node = _compose(decode(content))
    except YamlSourceError:
        return []
    if not isinstance(node, MappingNode):
        return []
    for key_node, value_node in node.value:
        if key_node.value == list_key and isinstance(value_node, SequenceNode):
            return [item.start_mark.line + 1 for item in value_node.value]
    return []
