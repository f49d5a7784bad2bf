"""Round-trip edits of spec files: every byte outside the edited lines stays identical.

Real: the YAML files under tests/data/authoring (the governance guide's
models.yaml layout with several models, and a file with comments, anchors,
aliases, a merge key, flow style and quoted and unquoted timestamps) and the
product's loader that checks each edit. Nothing is faked.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.authoring.edits import SpecEntry, SpecText
from registry_state import yaml_source
from registry_state.errors import SpecEditError

DATA = Path(__file__).resolve().parents[1] / "data" / "authoring"
GUIDE = DATA / "guide_models.yaml"
SHARED = DATA / "anchors_and_flow.yaml"


def spec_text(path: Path) -> SpecText:
    return SpecText(path.name, path.read_bytes())


def entry(text: SpecText, spec_id: str) -> SpecEntry:
    found = text.find(spec_id)
    assert found is not None, spec_id
    return found


def changed_lines(before: bytes, after: bytes) -> list[tuple[str, list[str], list[str]]]:
    """Return (tag, old lines, new lines) for every region that differs."""
    old, new = before.decode().splitlines(True), after.decode().splitlines(True)
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    return [
        (tag, old[i1:i2], new[j1:j2])
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]


def assert_one_line_replaced(before: bytes, after: bytes, *, old: str, new: str) -> None:
    """Check that the bytes differ only inside one line, which went from `old` to `new`."""
    assert changed_lines(before, after) == [("replace", [old], [new])]
    prefix = 0
    while prefix < min(len(before), len(after)) and before[prefix] == after[prefix]:
        prefix += 1
    suffix = 0
    while (suffix < min(len(before), len(after)) - prefix
           and before[-1 - suffix] == after[-1 - suffix]):
        suffix += 1
    line_start = before.rfind(b"\n", 0, prefix) + 1
    line_end = before.index(b"\n", line_start) + 1
    assert before[line_start:line_end] == old.encode()
    assert len(before) - suffix <= line_end


def spec_values(content: bytes, spec_id: str) -> dict[str, Any]:
    data = yaml_source.load(content)
    specs = data.get("models", [data])
    return next(spec for spec in specs if spec["id"] == spec_id)


@pytest.mark.parametrize(
    ("spec_id", "field", "value", "old", "new"),
    [
        pytest.param("q2q-claude-v1", ("active",), False, "    active: true\n",
                     "    active: false\n", id="guide-active"),
        pytest.param("q2q-claude-v3-enhanced", ("active",), True,
                     "    active: false  # Start inactive for testing\n",
                     "    active: true  # Start inactive for testing\n", id="guide-comment-kept"),
        pytest.param("q2q-claude-v3-enhanced", ("effective_from",), "2026-02-01T09:30:00Z",
                     '    effective_from: "2025-12-01T00:00:00Z"\n',
                     '    effective_from: "2026-02-01T09:30:00Z"\n', id="guide-double-quoted"),
        pytest.param("q2q-openai-v1", ("thresholds", "risk_min_cues"), 2,
                     "      risk_min_cues: 1\n", "      risk_min_cues: 2\n",
                     id="guide-last-spec-threshold"),
    ],
)
def test_guide_file_one_line_edits(
    spec_id: str, field: tuple[str, ...], value: Any, old: str, new: str
) -> None:
    original = spec_text(GUIDE)

    edited = original.with_value(entry(original, spec_id), field, value)

    assert_one_line_replaced(original.content, edited.content, old=old, new=new)


@pytest.mark.parametrize(
    ("spec_id", "field", "value", "old", "new"),
    [
        pytest.param("q2q-claude-v2", ("effective_from",), "2026-03-01T06:00:00Z",
                     "    effective_from: 2025-06-01T00:00:00Z   # unquoted timestamp\n",
                     "    effective_from: 2026-03-01T06:00:00Z   # unquoted timestamp\n",
                     id="unquoted-timestamp"),
        pytest.param("q2q-claude-v1", ("effective_from",), "2025-01-16",
                     "    effective_from: 2025-01-15           # a date: midnight UTC\n",
                     "    effective_from: 2025-01-16           # a date: midnight UTC\n",
                     id="unquoted-date-comment-column"),
        pytest.param("q2q-claude-v2", ("active",), True,
                     "    active: false\n", "    active: true\n", id="beside-merge-key"),
        pytest.param("q2q-gemini-v1", ("effective_from",), "2025-02-02",
                     '    effective_from: "2025-02-01"\n', '    effective_from: "2025-02-02"\n',
                     id="quoted-date"),
        pytest.param("q2q-gemini-v1", ("thresholds", "confidence_increase"), 0.75,
                     "    thresholds: {confidence_increase: 0.7, confidence_decrease: 0.7, "
                     "belonging_increase: 0.7, belonging_decrease: 0.7, language_comfort_high: "
                     "0.9, language_comfort_low: 0.2, employability_min_signals: 1, "
                     "risk_min_cues: 1}\n",
                     "    thresholds: {confidence_increase: 0.75, confidence_decrease: 0.7, "
                     "belonging_increase: 0.7, belonging_decrease: 0.7, language_comfort_high: "
                     "0.9, language_comfort_low: 0.2, employability_min_signals: 1, "
                     "risk_min_cues: 1}\n",
                     id="flow-mapping-value"),
        pytest.param("q2q-openai-v1", ("effective_from",), "2025-04-01T00:00:00+01:00",
                     "  - {id: q2q-openai-v1, provider: openai, model: gpt-4o, prompt_version: "
                     "v2.0, thresholds: *default_thresholds, effective_from: "
                     "'2025-03-01T00:00:00+01:00', active: *on}\n",
                     "  - {id: q2q-openai-v1, provider: openai, model: gpt-4o, prompt_version: "
                     "v2.0, thresholds: *default_thresholds, effective_from: "
                     "'2025-04-01T00:00:00+01:00', active: *on}\n",
                     id="flow-spec-single-quoted"),
        pytest.param("q2q-openai-v1", ("active",), False,
                     "  - {id: q2q-openai-v1, provider: openai, model: gpt-4o, prompt_version: "
                     "v2.0, thresholds: *default_thresholds, effective_from: "
                     "'2025-03-01T00:00:00+01:00', active: *on}\n",
                     "  - {id: q2q-openai-v1, provider: openai, model: gpt-4o, prompt_version: "
                     "v2.0, thresholds: *default_thresholds, effective_from: "
                     "'2025-03-01T00:00:00+01:00', active: false}\n",
                     id="alias-replaced-by-value"),
        pytest.param("q2q-claude-v1", ("id",), "q2q-claude-v1.1",
                     "    id: q2q-claude-v1        # the first model\n",
                     "    id: q2q-claude-v1.1        # the first model\n", id="plain-id"),
    ],
)
def test_shared_file_one_line_edits(
    spec_id: str, field: tuple[str, ...], value: Any, old: str, new: str
) -> None:
    original = spec_text(SHARED)

    edited = original.with_value(entry(original, spec_id), field, value)

    assert_one_line_replaced(original.content, edited.content, old=old, new=new)


def test_anchored_value_edit_rejected() -> None:
    original = spec_text(SHARED)

    with pytest.raises(SpecEditError) as error:
        original.with_value(entry(original, "q2q-claude-v1"), ("active",), False)

    assert str(error.value) == (
        "anchors_and_flow.yaml:5: cannot set active of 'q2q-claude-v1' without also changing "
        "other values, because the value is shared through an anchor ('&') or a merge key "
        "('<<'); write the value into this spec by hand, then run 'q2q validate'"
    )


def test_merged_value_written_into_spec() -> None:
    original = spec_text(SHARED)

    edited = original.with_value(entry(original, "q2q-claude-v2"), ("model",), "claude-next")

    assert changed_lines(original.content, edited.content) == [
        ("insert", [], ["    model: claude-next\n"])
    ]
    assert spec_values(edited.content, "q2q-claude-v2")["model"] == "claude-next"
    assert spec_values(edited.content, "q2q-claude-v1")["model"] == "claude-3-5-sonnet-20241022"


def test_merged_mapping_written_out_block() -> None:
    original = spec_text(SHARED)

    edited = original.with_value(
        entry(original, "q2q-claude-v2"), ("thresholds", "risk_min_cues"), 3
    )

    inserted = [
        "    thresholds:\n",
        "      confidence_increase: .80\n",
        "      confidence_decrease: 8e-1\n",
        "      belonging_increase: 0.80\n",
        "      belonging_decrease: 0.80\n",
        "      language_comfort_high: 0.90\n",
        "      language_comfort_low: 0.20\n",
        "      employability_min_signals: 1\n",
        "      risk_min_cues: 3\n",
    ]
    assert changed_lines(original.content, edited.content) == [("insert", [], inserted)]
    assert spec_values(edited.content, "q2q-claude-v1")["thresholds"]["risk_min_cues"] == 1
    assert spec_values(edited.content, "q2q-openai-v1")["thresholds"]["risk_min_cues"] == 1


def test_aliased_mapping_written_out_block(tmp_path: Path) -> None:
    content = GUIDE.read_bytes().replace(
        b"    thresholds:\n      confidence_increase: 0.80\n      confidence_decrease: 0.80\n"
        b"      belonging_increase: 0.80\n      belonging_decrease: 0.80\n"
        b"      language_comfort_high: 0.90\n      language_comfort_low: 0.20\n"
        b"      employability_min_signals: 1\n      risk_min_cues: 1\n"
        b"    effective_from: \"2025-12-01",
        b"    thresholds: *v1  # same as v1\n    effective_from: \"2025-12-01",
    ).replace(b"    thresholds:\n", b"    thresholds: &v1\n", 1)
    original = SpecText("models.yaml", content)

    edited = original.with_value(
        entry(original, "q2q-claude-v3-enhanced"), ("thresholds", "confidence_increase"), 0.85
    )

    assert changed_lines(original.content, edited.content) == [(
        "replace",
        ["    thresholds: *v1  # same as v1\n"],
        ["    thresholds:  # same as v1\n", "      confidence_increase: 0.85\n",
         "      confidence_decrease: 0.80\n", "      belonging_increase: 0.80\n",
         "      belonging_decrease: 0.80\n", "      language_comfort_high: 0.90\n",
         "      language_comfort_low: 0.20\n", "      employability_min_signals: 1\n",
         "      risk_min_cues: 1\n"],
    )]
    assert spec_values(edited.content, "q2q-claude-v1")["thresholds"]["confidence_increase"] == 0.8


def test_copy_appends_item_without_anchors() -> None:
    original = spec_text(SHARED)
    source = original.text.splitlines(True)
    first = source.index("  - &claude_base\n")
    last = source.index("    active: &on true\n")
    expected = [
        line.replace(" &claude_base", "").replace(" &default_thresholds", "")
        .replace("&on ", "")
        for line in source[first:last + 1]
    ]

    copied, new_entry = original.with_copy(entry(original, "q2q-claude-v1"))

    assert changed_lines(original.content, copied.content) == [("insert", [], expected)]
    assert expected[0] == "  -\n"
    assert expected[5] == "    thresholds:\n"
    assert expected[-1] == "    active: true\n"
    assert copied.text.endswith("      over two lines\n" + "".join(expected) + "...\n")
    assert new_entry.index == 4


def test_copy_of_guide_item_is_verbatim() -> None:
    original = spec_text(GUIDE)
    source = original.text.splitlines(True)
    first = source.index("  - id: q2q-claude-v3-enhanced\n")
    last = source.index('    description: "Enhanced Q2Q classifier with improved risk detection"\n')

    copied, new_entry = original.with_copy(entry(original, "q2q-claude-v3-enhanced"))

    assert copied.text == original.text + "".join(source[first:last + 1])
    assert new_entry == SpecEntry("q2q-claude-v3-enhanced", 3, 53)


def test_crlf_and_bom_kept() -> None:
    content = "\ufeff" + GUIDE.read_text().replace("\n", "\r\n")
    original = SpecText("models.yaml", content.encode())

    edited = original.with_value(entry(original, "q2q-claude-v1"), ("active",), False)

    assert edited.content.startswith(b"\xef\xbb\xbf# Q2Q")
    assert edited.content == original.content.replace(
        b"    active: true\r\n    description: \"Baseline",
        b"    active: false\r\n    description: \"Baseline",
    )


def test_single_spec_file_edit() -> None:
    content = (
        b"# one spec\nid: q2q-claude-v1\nprovider: claude\nmodel: m\nprompt_version: v2.0\n"
        b"thresholds: {confidence_increase: 0.8}\neffective_from: '2025-01-15'\nactive: true"
    )
    original = SpecText("q2q-claude-v1.yaml", content)

    edited = original.with_value(entry(original, "q2q-claude-v1"), ("active",), False)

    assert edited.content == content.replace(b"active: true", b"active: false")
    assert original.entries == [SpecEntry("q2q-claude-v1", None, 1)]


@pytest.mark.parametrize(
    ("value", "style", "written"),
    [
        pytest.param("q2q-a", None, "q2q-a", id="plain-string"),
        pytest.param("123", None, '"123"', id="digits-need-quotes"),
        pytest.param("true", None, '"true"', id="bool-word-needs-quotes"),
        pytest.param("a: b", None, '"a: b"', id="colon-space-needs-quotes"),
        pytest.param("it's", "'", "'it''s'", id="single-quote-doubled"),
        pytest.param("line\nbreak", "|", '"line\\nbreak"', id="block-becomes-double"),
    ],
)
def test_scalar_rendering(value: str, style: str | None, written: str) -> None:
    from reconciler.authoring.rendering import render_scalar

    assert render_scalar(value, style=style) == written
    assert yaml_source.load(f"key: {written}\n".encode()) == {"key": value}


def test_folded_scalar_replaced() -> None:
    original = spec_text(SHARED)

    edited = original.with_value(entry(original, "q2q-gemini-v1"), ("description",), "Short")

    assert changed_lines(original.content, edited.content) == [(
        "replace",
        ["    description: >-\n", "      Folded text\n", "      over two lines\n"],
        ['    description: "Short"\n'],
    )]
    assert edited.text.endswith('"Short"\n...\n')


_QUOTES = st.sampled_from(["", "'", '"'])
_COMMENTS = st.sampled_from(["", "  # note", "    # aligned: note"])


@st.composite
def models_files(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Draw a valid models file in varied layouts, with the ids of its specs."""
    indent = " " * draw(st.sampled_from([2, 4]))
    dash = draw(st.sampled_from(["", indent]))
    count = draw(st.integers(min_value=1, max_value=4))
    lines = [f"# registry{draw(_COMMENTS)}", "models:"]
    ids = []
    for number in range(count):
        spec_id = f"q2q-claude-v{number}"
        ids.append(spec_id)
        quote = draw(_QUOTES)
        lines.append(f"{dash}- id: {quote}{spec_id}{quote}{draw(_COMMENTS)}")
        pad = dash + "  "
        lines += [f"{pad}provider: claude", f"{pad}model: m{number}", f"{pad}prompt_version: v2.0"]
        if draw(st.booleans()):
            lines.append(f"{pad}thresholds: {{confidence_increase: 0.8, risk_min_cues: 1}}")
        else:
            lines += [f"{pad}thresholds:", f"{pad}{indent}confidence_increase: .80",
                      f"{pad}{indent}risk_min_cues: 1{draw(_COMMENTS)}"]
        stamp = draw(st.sampled_from(["2025-01-15", "2025-01-15T00:00:00Z",
                                      "2025-01-15 06:00:00+01:00"]))
        time_quote = draw(_QUOTES)
        lines.append(f"{pad}effective_from: {time_quote}{stamp}{time_quote}{draw(_COMMENTS)}")
        lines.append(f"{pad}active: {draw(st.sampled_from(['true', 'false']))}"
                     f"{draw(_COMMENTS)}")
        if draw(st.booleans()):
            lines.append("")
    return "\n".join(lines) + draw(st.sampled_from(["\n", ""])), ids


@settings(max_examples=60, deadline=None)
@given(drawn=models_files(), data=st.data())
def test_any_layout_one_line_changes(drawn: tuple[str, list[str]], data: st.DataObject) -> None:
    text, ids = drawn
    spec_id = data.draw(st.sampled_from(ids))
    field = data.draw(st.sampled_from([("active",), ("effective_from",),
                                       ("thresholds", "risk_min_cues")]))
    value = {"active": True, "effective_from": "2026-02-01T09:30:00Z",
             "thresholds": 7}[field[0]]
    original = SpecText("models.yaml", text.encode())
    if spec_values(original.content, spec_id)[field[0]] == value:
        value = False

    edited = original.with_value(entry(original, spec_id), field, value)

    differences = changed_lines(original.content, edited.content)
    assert len(differences) == 1
    tag, old, new = differences[0]
    assert (tag, len(old), len(new)) == ("replace", 1, 1)
    assert old[0].split(":")[0] == new[0].split(":")[0]
    assert spec_values(edited.content, spec_id)[field[0]] == (
        {field[1]: value} | {"confidence_increase": 0.8}
        if field[0] == "thresholds" else value
    )


def test_alias_in_flow_spec_inlined() -> None:
    original = spec_text(SHARED)
    copied, new_entry = original.with_copy(entry(original, "q2q-openai-v1"))

    edited = copied.with_value(new_entry, ("thresholds", "risk_min_cues"), 3)

    differences = changed_lines(copied.content, edited.content)
    assert len(differences) == 1
    tag, old, new = differences[0]
    assert (tag, len(old), len(new)) == ("replace", 1, 1)
    assert "thresholds: *default_thresholds," in old[0]
    assert ("thresholds: {confidence_increase: 0.8, confidence_decrease: 0.8, "
            "belonging_increase: 0.8, belonging_decrease: 0.8, language_comfort_high: 0.9, "
            "language_comfort_low: 0.2, employability_min_signals: 1, risk_min_cues: 3}, ") \
        in new[0]
    assert spec_values(edited.content, "q2q-openai-v1")["thresholds"]["risk_min_cues"] == 1
