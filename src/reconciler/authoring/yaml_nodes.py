"""Text positions of the nodes of a YAML document, for edits that keep the rest of the text.

`parse_nodes(text)` runs ruamel.yaml's round-trip parser and returns the
document's root `YamlNode`, with character offsets into `text`. Aliases stay
alias nodes instead of being expanded, so an editor can tell a value written in
place from one shared through an anchor. `edits.SpecText` is the caller.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)

from registry_state.errors import SpecEditError


class NodeKind(enum.StrEnum):
    SCALAR = "scalar"
    MAPPING = "mapping"
    SEQUENCE = "sequence"
    ALIAS = "alias"


@dataclass
class YamlNode:
    """One node as written: its kind, text span and, for collections, its children.

    `start` is the offset of the node's first character, its anchor included;
    `end` is the offset just after its last character. For a block collection,
    `end` is the end of its last child, so comments after it are outside.
    """

    kind: NodeKind
    start: int
    end: int
    line: int
    anchor: str | None = None
    tag: str | None = None
    style: str | None = None
    flow: bool = False
    value: str = ""
    pairs: list[tuple[YamlNode, YamlNode]] = field(default_factory=list)
    items: list[YamlNode] = field(default_factory=list)

    def pair(self, key: str) -> tuple[YamlNode, YamlNode] | None:
        """Return the (key, value) pair written directly in this mapping under `key`."""
        for key_node, value_node in self.pairs:
            if key_node.kind is NodeKind.SCALAR and key_node.value == key:
                return key_node, value_node
        return None

    def walk(self) -> Iterator[YamlNode]:
        """Yield this node and every node inside it, in document order."""
        yield self
        for key_node, value_node in self.pairs:
            yield from key_node.walk()
            yield from value_node.walk()
        for item in self.items:
            yield from item.walk()


def content_start(text: str, node: YamlNode) -> int:
    """Return the offset of a node's value, after its anchor and tag."""
    position = node.start
    while position < node.end and text[position] in "&!":
        while position < node.end and not text[position].isspace():
            position += 1
        while position < node.end and text[position] in " \t\r\n":
            position += 1
    return position


def content_end(text: str, node: YamlNode) -> int:
    """Return the offset after a node's last non-blank character.

    A block scalar's span includes the line breaks after its last line. They
    belong to the layout around it, so they stay when the scalar is replaced.
    """
    end = node.end
    while end > node.start and text[end - 1] in " \t\r\n":
        end -= 1
    return end


def line_start(text: str, offset: int) -> int:
    """Return the offset of the first character of the line that contains `offset`."""
    return text.rfind("\n", 0, max(offset, 0)) + 1


def line_end(text: str, offset: int) -> int:
    """Return the offset of the line break (CR LF or LF) ending the line that contains `offset`."""
    end = text.find("\n", offset)
    if end < 0:
        return len(text)
    return end - 1 if end > 0 and text[end - 1] == "\r" else end


def column(text: str, offset: int) -> int:
    return offset - line_start(text, offset)


def text_without_anchors(text: str, node: YamlNode, *, start: int, end: int) -> str:
    """Return `text[start:end]`, which contains `node`, with the anchors inside it removed.

    A copy of a node must not define its anchors a second time; aliases in the
    copy keep referring to the original anchors.
    """
    removals: list[tuple[int, int]] = []
    for inner in node.walk():
        if inner.anchor is None:
            continue
        token = f"&{inner.anchor}"
        at = text.find(token, line_start(text, inner.start), end)
        if at < start:
            continue
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


def block_lines(text: str, node: YamlNode, *, indent: int) -> list[str]:
    """Return the lines of a block collection, without its anchors, re-indented to `indent`.

    Lines keep their indentation relative to the node's first line, so nested
    blocks and block scalars stay well-formed.
    """
    start = content_start(text, node)
    end = line_end(text, content_end(text, node))
    body = text_without_anchors(text, node, start=start, end=end)
    first_column = column(text, start)
    lines = [line.rstrip("\r") for line in body.split("\n")]
    shifted = [" " * indent + lines[0]]
    for line in lines[1:]:
        rest = line[first_column:] if not line[:first_column].strip() else line.lstrip()
        shifted.append(" " * indent + rest if rest else "")
    return shifted


def parse_nodes(text: str, *, path: str) -> YamlNode | None:
    """Parse one YAML document into positioned nodes; an empty document gives None."""
    try:
        events = list(YAML(typ="rt").parse(text))
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise SpecEditError(
            f"{path}{line}: cannot parse the file for editing: {error.problem}; "
            f"run 'q2q validate' to see every problem"
        ) from None
    builder = _TreeBuilder(iter(events))
    return builder.document()


class _TreeBuilder:
    def __init__(self, events: Iterator[Event]) -> None:
        self.events = events

    def document(self) -> YamlNode | None:
        root: YamlNode | None = None
        for event in self.events:
            if isinstance(event, (StreamStartEvent, DocumentStartEvent)):
                continue
            if isinstance(event, (DocumentEndEvent, StreamEndEvent)):
                break
            root = self.node(event)
        return root

    def node(self, event: Event) -> YamlNode:
        start = event.start_mark.index
        line = event.start_mark.line + 1
        if isinstance(event, AliasEvent):
            return YamlNode(NodeKind.ALIAS, start, event.end_mark.index, line,
                            value=str(event.anchor))
        if isinstance(event, ScalarEvent):
            return YamlNode(NodeKind.SCALAR, start, event.end_mark.index, line,
                            anchor=event.anchor, tag=event.tag, style=event.style,
                            value=event.value)
        if isinstance(event, MappingStartEvent):
            mapping = YamlNode(NodeKind.MAPPING, start, start, line, anchor=event.anchor,
                               tag=event.tag, flow=bool(event.flow_style))
            for key_event in self.events:
                if isinstance(key_event, MappingEndEvent):
                    mapping.end = self._collection_end(mapping, key_event)
                    return mapping
                key_node = self.node(key_event)
                mapping.pairs.append((key_node, self.node(next(self.events))))
        if isinstance(event, SequenceStartEvent):
            sequence = YamlNode(NodeKind.SEQUENCE, start, start, line, anchor=event.anchor,
                                tag=event.tag, flow=bool(event.flow_style))
            for item_event in self.events:
                if isinstance(item_event, SequenceEndEvent):
                    sequence.end = self._collection_end(sequence, item_event)
                    return sequence
                sequence.items.append(self.node(item_event))
        raise SpecEditError(f"unexpected YAML event {type(event).__name__} at line {line}")

    @staticmethod
    def _collection_end(node: YamlNode, end_event: Event) -> int:
        if node.flow:
            return int(end_event.end_mark.index)
        children = [value for _key, value in node.pairs] or node.items
        return children[-1].end if children else int(end_event.end_mark.index)
