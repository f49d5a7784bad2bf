"""Tests of registry_state.yaml_source: YAML 1.2 core-schema loading within limits.

The hostile-input tests assert on the error, never on time. Each input is built
so that a loader without the matching guard would hang, exhaust memory or hit
Python's recursion limit. The comment on each case says which.
"""

from __future__ import annotations

import contextlib
import math
import random
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry_state import yaml_source
from registry_state.yaml_source import Position, YamlSourceError, item_lines, load, locate

MEMORY_LIMIT_BYTES = 50 * 1024 * 1024


def load_value(text: str) -> object:
    """Load `value: <text>` and return the value."""
    data = load(f"value: {text}\n".encode())
    assert isinstance(data, dict)
    return data["value"]


def load_error(content: bytes) -> YamlSourceError:
    with pytest.raises(YamlSourceError) as caught:
        load(content)
    return caught.value


def peak_allocation(content: bytes) -> int:
    """Return the peak bytes Python allocates while `load(content)` fails."""
    tracemalloc.start()
    try:
        with pytest.raises(YamlSourceError):
            load(content)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


# --- scalar resolution by the YAML 1.2 core schema ---------------------------------------------

CORE_SCHEMA_SCALARS = [
    pytest.param("yes", "yes", id="yes-is-string"),
    pytest.param("Yes", "Yes", id="Yes-is-string"),
    pytest.param("no", "no", id="no-is-string"),
    pytest.param("on", "on", id="on-is-string"),
    pytest.param("off", "off", id="off-is-string"),
    pytest.param("y", "y", id="y-is-string"),
    pytest.param("true", True, id="true"),
    pytest.param("True", True, id="True"),
    pytest.param("TRUE", True, id="TRUE"),
    pytest.param("false", False, id="false"),
    pytest.param("tRUE", "tRUE", id="mixed-case-bool-is-string"),
    pytest.param("0.8", 0.8, id="float-0.8"),
    pytest.param(".80", 0.8, id="float-.80"),
    pytest.param("8e-1", 0.8, id="float-8e-1"),
    pytest.param("1e3", 1000.0, id="float-exponent-without-dot"),
    pytest.param("-.5", -0.5, id="float-negative-leading-dot"),
    pytest.param("1.", 1.0, id="float-trailing-dot"),
    pytest.param("42", 42, id="int-decimal"),
    pytest.param("-7", -7, id="int-negative"),
    pytest.param("+1", 1, id="int-plus-sign"),
    pytest.param("017", 17, id="int-leading-zero-is-decimal"),
    pytest.param("0x1F", 31, id="int-hex"),
    pytest.param("0o17", 15, id="int-octal"),
    pytest.param("0b101", "0b101", id="binary-is-string"),
    pytest.param("0o8", "0o8", id="bad-octal-is-string"),
    pytest.param("1_000", "1_000", id="underscore-number-is-string"),
    pytest.param("~", None, id="tilde-null"),
    pytest.param("null", None, id="null"),
    pytest.param("Null", None, id="Null"),
    pytest.param("NULL", None, id="NULL"),
    pytest.param("", None, id="empty-null"),
    pytest.param("'0.8'", "0.8", id="single-quoted-float"),
    pytest.param('"true"', "true", id="double-quoted-bool"),
    pytest.param("'null'", "null", id="quoted-null"),
    pytest.param("'0x1F'", "0x1F", id="quoted-hex"),
    pytest.param("2025-01-15", "2025-01-15", id="date-is-string"),
    pytest.param("2025-06-01T00:00:00Z", "2025-06-01T00:00:00Z", id="timestamp-is-string"),
    pytest.param("2025-06-01 00:00:00", "2025-06-01 00:00:00", id="spaced-timestamp-is-string"),
    pytest.param(".inf", math.inf, id="inf"),
    pytest.param("-.Inf", -math.inf, id="negative-inf"),
    pytest.param("!!str 1", "1", id="explicit-str-tag"),
    pytest.param("!!float 1", 1.0, id="explicit-float-tag"),
]


@pytest.mark.parametrize(("text", "expected"), CORE_SCHEMA_SCALARS)
def test_scalar_core_schema(text: str, expected: object) -> None:
    value = load_value(text)

    assert value == expected
    assert type(value) is type(expected)


def test_scalar_nan_is_float() -> None:
    value = load_value(".nan")

    assert isinstance(value, float)
    assert math.isnan(value)


def test_float_spellings_equal() -> None:
    data = load(b"- 0.8\n- .80\n- 8e-1\n")

    assert data == [0.8, 0.8, 0.8]
    assert len(set(data)) == 1


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_repr_round_trips(number: float) -> None:
    assert load_value(repr(number)) == number


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_int_round_trips(number: int) -> None:
    assert load_value(str(number)) == number


# --- tags --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"value: !custom x\n", id="local-tag-on-scalar"),
        pytest.param(b"value: !!python/name:os.system\n", id="python-tag-on-scalar"),
        pytest.param(b"value: !!binary aGVsbG8=\n", id="binary-tag"),
    ],
)
def test_scalar_tag_rejected(content: bytes) -> None:
    error = load_error(content)

    assert "unsupported tag" in error.message
    assert "without tags" in error.message
    assert (error.line, error.column) == (1, 8)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(
            b"value: !!python/object/apply:os.system ['true']\n", id="python-tag-sequence"
        ),
        pytest.param(b"value: !!python/object:builtins.dict {a: 1}\n", id="python-tag-mapping"),
        pytest.param(b"value: !!set {a, b}\n", id="set-tag"),
        pytest.param(b"value: !!str [1]\n", id="str-tag-on-sequence"),
        pytest.param(b"value: !local {a: 1}\n", id="local-tag-on-mapping"),
    ],
)
def test_collection_tag_rejected(content: bytes) -> None:
    # Scalars with an unknown tag are rejected, so a tagged list or mapping must not
    # silently lose its tag and load as plain data either.
    error = load_error(content)

    assert "unsupported tag" in error.message
    assert error.line == 1


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("!!int abc", id="int-tag-on-word"),
        pytest.param("!!int 1.5", id="int-tag-on-float"),
        pytest.param("!!int 0x", id="int-tag-on-bare-hex-prefix"),
        pytest.param("!!float abc", id="float-tag-on-word"),
        pytest.param("!!bool maybe", id="bool-tag-on-word"),
        pytest.param("!!null x", id="null-tag-on-word"),
    ],
)
def test_explicit_tag_bad_value(text: str) -> None:
    # A value that does not fit its explicit tag is an error at its position, not
    # a ValueError from int()/float() and not a silent False or None.
    error = load_error(f"value: {text}\n".encode())

    assert repr(text.split(" ", 1)[1]) in error.message
    assert (error.line, error.column) == (1, 8)


# --- duplicate keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message", "line", "column"),
    [
        pytest.param(
            b"a: 1\nb: 2\na: 3\n",
            "duplicate key 'a' (first defined on line 1); keep one of them",
            3,
            1,
            id="top-level",
        ),
        pytest.param(
            b"spec:\n  id: x\n  model: m\n  id: y\n",
            "duplicate key 'id' (first defined on line 2); keep one of them",
            4,
            3,
            id="nested",
        ),
        pytest.param(
            b"- a: 1\n  a: 2\n",
            "duplicate key 'a' (first defined on line 1); keep one of them",
            2,
            3,
            id="in-list-item",
        ),
        pytest.param(
            b"1: a\n0x1: b\n",
            "duplicate key 1 (first defined on line 1); keep one of them",
            2,
            1,
            id="equal-after-resolution",
        ),
        pytest.param(
            b"a: 1\r\nb: 2\r\nb: 3\r\n",
            "duplicate key 'b' (first defined on line 2); keep one of them",
            3,
            1,
            id="crlf-line-ends",
        ),
        pytest.param(
            b"{a: 1, a: 2}\n",
            "duplicate key 'a' (first defined on line 1); keep one of them",
            1,
            8,
            id="flow-mapping",
        ),
    ],
)
def test_duplicate_key_rejected(content: bytes, message: str, line: int, column: int) -> None:
    error = load_error(content)

    assert error.message == message
    assert error.line == line
    assert error.column == column


def test_quoted_and_plain_keys_distinct() -> None:
    # 1 (an int) and '1' (a string) are different keys in YAML 1.2.
    assert load(b"1: a\n'1': b\n") == {1: "a", "1": "b"}


def test_complex_key_rejected() -> None:
    error = load_error(b"[a, b]: 1\n")

    assert error.message == "a mapping key must be a plain value, not a list or mapping"
    assert (error.line, error.column) == (1, 1)


# --- merge keys --------------------------------------------------------------------------------


def test_merge_single_mapping() -> None:
    data = load(b"base: &base {x: 1, y: 2}\nspec:\n  <<: *base\n  z: 3\n")

    assert data["spec"] == {"x": 1, "y": 2, "z": 3}


def test_merge_list_earlier_wins() -> None:
    data = load(b"a: &a {x: 1}\nb: &b {x: 2, w: 2}\nspec:\n  <<: [*a, *b]\n")

    assert data["spec"] == {"x": 1, "w": 2}


def test_merge_explicit_key_after_wins() -> None:
    data = load(b"base: &base {x: 1, y: 2}\nspec:\n  <<: *base\n  y: 3\n")

    assert data["spec"] == {"x": 1, "y": 3}


def test_merge_explicit_key_before_wins() -> None:
    data = load(b"spec:\n  y: 3\n  <<: {x: 1, y: 1}\n")

    assert data["spec"] == {"x": 1, "y": 3}


def test_merge_leaves_anchor_unchanged() -> None:
    data = load(b"base: &base {x: 1}\nspec:\n  <<: *base\n  x: 2\n")

    assert data["base"] == {"x": 1}


def test_merge_quoted_key_is_plain() -> None:
    assert load(b"spec:\n  '<<': 1\n") == {"spec": {"<<": 1}}


@pytest.mark.parametrize(
    ("content", "column"),
    [
        pytest.param(b"spec:\n  <<: 1\n", 7, id="scalar"),
        pytest.param(b"spec:\n  <<: [{x: 1}, 2]\n", 16, id="scalar-in-list"),
    ],
)
def test_merge_non_mapping_rejected(content: bytes, column: int) -> None:
    error = load_error(content)

    assert error.message == "a '<<' merge key takes a mapping or a list of mappings"
    assert (error.line, error.column) == (2, column)


def test_merge_within_depth_loads() -> None:
    content = ("{<<: " * 10 + "{x: 1}" + "}" * 10).encode()

    assert load(content) == {"x": 1}


def test_merge_nesting_depth_capped() -> None:
    # Each level is a mapping whose only content comes through '<<'. Without a
    # depth check on merge sources the builder recurses 900 levels and raises
    # RecursionError. The libyaml under PyYAML 6.0.4 stops only at 1,000 levels.
    content = ("{<<: " * 900 + "{}" + "}" * 900).encode()

    error = load_error(content)

    assert "nesting is deeper than" in error.message
    assert error.line == 1


def test_merge_bomb_node_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # Ten levels, each merging the previous one ten times, make 10**9 mapping
    # expansions. The sources are empty, so no value node is ever built: only
    # counting the merged mappings themselves stops this. The spy turns a missing
    # count into a quick failure instead of a hang of hours.
    lines = ["m0: &m0 {}"]
    for level in range(1, 10):
        aliases = ", ".join([f"*m{level - 1}"] * 10)
        lines.append(f"m{level}: &m{level} {{<<: [{aliases}]}}")
    content = "\n".join(lines).encode()

    expansions = 0
    original = yaml_source._Builder._mapping

    def counting_mapping(self: object, node: object, depth: int) -> object:
        nonlocal expansions
        expansions += 1
        if expansions > 10 * yaml_source.MAX_NODES:
            raise AssertionError(f"merge keys expanded {expansions} mappings without a limit")
        return original(self, node, depth)

    monkeypatch.setattr(yaml_source._Builder, "_mapping", counting_mapping)

    error = load_error(content)

    assert "expands to more than" in error.message


# --- alias bombs, oversized files and deep nesting ---------------------------------------------


def billion_laughs() -> bytes:
    """Return ten levels of ten aliases each: 10**10 scalars when fully expanded."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * 10) + "]"]
    for level in range(1, 10):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]")
    return ("\n".join(lines) + "\n").encode()


def test_alias_bomb_rejected() -> None:
    error = load_error(billion_laughs())

    assert error.message == (
        f"the document expands to more than {yaml_source.MAX_NODES} nodes "
        "(aliases count each time they are used); simplify the anchors"
    )
    assert error.line is not None
    assert error.column is not None


def test_alias_bomb_memory_bounded() -> None:
    content = billion_laughs()

    assert peak_allocation(content) < MEMORY_LIMIT_BYTES


def test_alias_reuse_within_limit() -> None:
    data = load(b"t: &t {a: 0.8}\nx: *t\ny: *t\n")

    assert data == {"t": {"a": 0.8}, "x": {"a": 0.8}, "y": {"a": 0.8}}


def test_undefined_alias_rejected() -> None:
    error = load_error(b"a: *missing\n")

    assert error.message == "found undefined alias"
    assert (error.line, error.column) == (1, 4)


def ten_megabytes() -> bytes:
    """Return a 10 MiB mapping of 524,288 distinct keys, valid YAML throughout."""
    content = b"".join(b"k%08d: %08d\n" % (i, i) for i in range(524_288))
    assert len(content) == 10 * 1024 * 1024
    return content


def test_oversized_file_rejected() -> None:
    error = load_error(ten_megabytes())

    assert error.message == (
        "the file is 10,485,760 bytes, larger than the 1,048,576-byte limit for a file "
        "of desired state; split it into one spec per file"
    )
    assert error.line is None


def test_oversized_file_memory_bounded() -> None:
    content = ten_megabytes()

    assert peak_allocation(content) < MEMORY_LIMIT_BYTES


def test_file_at_size_limit_loads() -> None:
    head = b"a: 1\n#"
    content = head + b"x" * (yaml_source.MAX_FILE_BYTES - len(head) - 1) + b"\n"
    assert len(content) == yaml_source.MAX_FILE_BYTES

    assert load(content) == {"a": 1}


def test_file_over_size_limit_rejected() -> None:
    content = b"a: 1\n#" + b"x" * yaml_source.MAX_FILE_BYTES

    error = load_error(content)

    assert "larger than the 1,048,576-byte limit" in error.message


def block_mapping(levels: int) -> bytes:
    """Return `levels` nested block mappings indented one space per level."""
    lines = [" " * level + "k:" for level in range(levels)]
    lines.append(" " * levels + "1")
    return ("\n".join(lines) + "\n").encode()


DEEP_DOCUMENTS = [
    pytest.param(("[" * 10_000 + "]" * 10_000).encode(), id="flow-sequence-10000"),
    pytest.param(("{a: " * 10_000 + "1" + "}" * 10_000).encode(), id="flow-mapping-10000"),
    pytest.param(("- " * 10_000 + "x\n").encode(), id="block-sequence-10000"),
    # 1,400 levels indented one space each make 984,902 bytes, under the 1 MiB limit.
    pytest.param(block_mapping(1_400), id="block-mapping-1400"),
    pytest.param(("[" * 40 + "]" * 40).encode(), id="flow-sequence-40"),
    pytest.param(block_mapping(40), id="block-mapping-40"),
    pytest.param(("- " * 40 + "x\n").encode(), id="block-sequence-40"),
]


@pytest.mark.parametrize("content", DEEP_DOCUMENTS)
def test_deep_nesting_rejected(content: bytes) -> None:
    assert len(content) <= yaml_source.MAX_FILE_BYTES

    error = load_error(content)

    assert "nesting" in error.message
    assert error.line is not None


def test_nesting_within_limit_loads() -> None:
    content = ("[" * 30 + "1" + "]" * 30).encode()

    data = load(content)

    for _level in range(30):
        assert isinstance(data, list)
        data = data[0]
    assert data == 1


# --- binary and badly encoded input ------------------------------------------------------------

BINARY_INPUTS = [
    pytest.param(random.Random(20251204).randbytes(4096), "not valid UTF-8", id="random-bytes"),
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not valid UTF-8", id="png-header"),
    pytest.param("id: x\n".encode("utf-16"), "not valid UTF-8", id="utf-16-with-bom"),
    pytest.param(b"id: caf\xe9\n", "not valid UTF-8", id="latin-1-text"),
    pytest.param(b"id: a\x00b\n", "NUL byte", id="nul-byte"),
    pytest.param(b"\x00" * 1024, "NUL byte", id="all-nul"),
]


@pytest.mark.parametrize(("content", "expected"), BINARY_INPUTS)
def test_binary_input_rejected(content: bytes, expected: str) -> None:
    error = load_error(content)

    assert expected in error.message


def test_invalid_utf8_names_byte_and_line() -> None:
    error = load_error(b"id: x\nmodel: caf\xe9\n")

    assert error.message == (
        "the file is not valid UTF-8 (byte 0xe9 at offset 16); save it as UTF-8"
    )
    assert error.line == 2


def test_nul_byte_names_line() -> None:
    error = load_error(b"id: x\nmodel: a\x00b\n")

    assert error.message == "the file contains a NUL byte; is it a binary file?"
    assert error.line == 2


def test_control_character_positioned() -> None:
    # U+0007 is valid UTF-8 but not allowed in YAML. The error must name the line
    # and fit on one line, because the CLI prints one `FILE:LINE:COL: message` line.
    error = load_error(b"id: x\nmodel: a\x07b\n")

    assert error.line == 2
    assert "\n" not in error.message
    assert "0007" in error.message


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_crash(content: bytes) -> None:
    with contextlib.suppress(YamlSourceError):
        load(content)


YAML_PIECES = st.sampled_from(
    [*"ab:-[]{},&*!? \n'\"#|>.0x~%@`\t", "<<", "&a", "*a", "---", "...", "\ufeff", "\u2028"]
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(YAML_PIECES, max_size=60).map("".join))
def test_yaml_like_text_never_crashes(text: str) -> None:
    with contextlib.suppress(YamlSourceError):
        load(text.encode())


# --- empty files, several documents, BOM, syntax errors ----------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="no-bytes"),
        pytest.param(b"\n\n  \n", id="blank-lines"),
        pytest.param(b"# only a comment\n", id="comment-only"),
        pytest.param(b"---\n", id="document-marker-only"),
        pytest.param(b"\xef\xbb\xbf", id="bom-only"),
    ],
)
def test_empty_document_is_none(content: bytes) -> None:
    assert load(content) is None


@pytest.mark.parametrize(
    ("content", "line"),
    [
        pytest.param(b"a: 1\n---\nb: 2\n", 2, id="two-documents"),
        pytest.param(b"---\na: 1\n---\nb: 2\n", 3, id="two-marked-documents"),
        pytest.param(b"a: 1\n---\n", 2, id="empty-second-document"),
    ],
)
def test_multiple_documents_rejected(content: bytes, line: int) -> None:
    error = load_error(content)

    assert error.message == "a file holds one YAML document; remove the extra '---' section"
    assert error.line == line
    assert error.column == 1


def test_document_end_marker_allowed() -> None:
    assert load(b"---\na: 1\n...\n") == {"a": 1}


def test_utf8_bom_accepted() -> None:
    assert load(b"\xef\xbb\xbfid: x\nmodel: m\n") == {"id": "x", "model": "m"}


def test_utf8_bom_keeps_positions() -> None:
    error = load_error(b"\xef\xbb\xbfa: 1\nb: 2\nb: 3\n")

    assert (error.line, error.column) == (3, 1)


@pytest.mark.parametrize(
    ("content", "message", "line", "column"),
    [
        pytest.param(b"a: [1, 2", "did not find expected ',' or ']'", 2, 1, id="unclosed-flow"),
        pytest.param(
            b"a: b: c\n",
            "mapping values are not allowed in this context",
            1,
            5,
            id="colon-in-plain-value",
        ),
        pytest.param(
            b"a:\n\tb: 1\n", "found character that cannot start any token", 2, 1, id="tab-indent"
        ),
        pytest.param(
            b"a: 'open\n", "found unexpected end of stream", 2, 1, id="unterminated-quote"
        ),
    ],
)
def test_syntax_error_positioned(content: bytes, message: str, line: int, column: int) -> None:
    error = load_error(content)

    assert error.message == message
    assert error.line == line
    assert error.column == column


# --- locate and item_lines ---------------------------------------------------------------------

LOCATE_DOCUMENT = b"""\
# comment
id: q2q-claude-v1
thresholds:
  confidence_increase: 0.75
  risk_min_cues: 1
models:
  - id: first
  - id: second
    active: true
"""


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        pytest.param((), True, Position(2, 1), id="root"),
        pytest.param(("id",), True, Position(2, 1), id="top-key"),
        pytest.param(("id",), False, Position(2, 5), id="top-value"),
        pytest.param(("thresholds", "risk_min_cues"), True, Position(5, 3), id="nested-key"),
        pytest.param(("thresholds", "risk_min_cues"), False, Position(5, 18), id="nested-value"),
        pytest.param(("thresholds",), False, Position(4, 3), id="mapping-value"),
        pytest.param(("models", 1), True, Position(8, 5), id="list-item"),
        pytest.param(("models", 1, "active"), True, Position(9, 5), id="key-in-list-item"),
        pytest.param(("thresholds", "missing"), True, Position(4, 3), id="missing-key-parent"),
        pytest.param(("models", 5, "id"), True, Position(7, 3), id="index-out-of-range"),
        pytest.param(("id", "deeper"), True, Position(2, 5), id="below-scalar"),
    ],
)
def test_locate_position(path: tuple[str | int, ...], key: bool, expected: Position) -> None:
    assert locate(LOCATE_DOCUMENT, path, key=key) == expected


def test_locate_repeated_segment() -> None:
    # An unknown key named like its parent, as in models[0].models, must be placed
    # at the inner key, not at the outer one.
    content = b"models:\n  - id: x\n    models: 1\n"

    assert locate(content, ("models", 0, "models")) == Position(3, 5)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"a: [1", id="invalid-yaml"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff", id="invalid-utf8"),
    ],
)
def test_locate_unparseable_is_none(content: bytes) -> None:
    assert locate(content, ("a",)) is None


def test_item_lines_of_models() -> None:
    assert item_lines(LOCATE_DOCUMENT, "models") == [7, 8]


def test_item_lines_without_list() -> None:
    assert item_lines(LOCATE_DOCUMENT, "thresholds") == []
