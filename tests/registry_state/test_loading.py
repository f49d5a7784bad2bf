"""Tests of registry_state.loading: one spec per file, or a `models:` list of specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry_state.errors import Problem
from registry_state.loading import FileResult, SourceFile, load_spec_file
from registry_state.spec import ModelSpec

GUIDE_MODELS_FILE = Path(__file__).parent.parent / "data" / "governance_guide_models.yaml"

SINGLE_SPEC = """\
id: q2q-claude-v1
provider: claude
model: claude-3-sonnet-20240229
prompt_version: v1.0
thresholds:
  confidence_increase: 0.75
  confidence_decrease: 0.75
  belonging_increase: 0.75
  belonging_decrease: 0.75
  language_comfort_high: 0.85
  language_comfort_low: 0.25
  employability_min_signals: 2
  risk_min_cues: 1
effective_from: 2025-01-15
active: false
"""

# A second item for the guide's models.yaml, indented as a list item.
SECOND_ITEM = """\
  - id: q2q-openai-gpt4o-v1
    provider: openai
    model: gpt-4o-2024-08-06
    prompt_version: v2.0
    thresholds:
      confidence_increase: 0.80
      confidence_decrease: 0.80
      belonging_increase: 0.80
      belonging_decrease: 0.80
      language_comfort_high: 0.90
      language_comfort_low: 0.20
      employability_min_signals: 1
      risk_min_cues: 1
    effective_from: "2025-09-01T00:00:00Z"
    active: true
"""


def load(text: str | bytes, path: str = "models/models.yaml") -> FileResult:
    content = text.encode() if isinstance(text, str) else text
    return load_spec_file(SourceFile(path, content), ModelSpec)


def guide_with_second_item(second_item: str = SECOND_ITEM) -> str:
    return GUIDE_MODELS_FILE.read_text() + second_item


def only_problem(result: FileResult) -> Problem:
    assert len(result.problems) == 1, [str(p) for p in result.problems]
    return result.problems[0]


# --- one spec per file -------------------------------------------------------------------------


def test_single_spec_loads() -> None:
    result = load(SINGLE_SPEC, path="models/q2q-claude-v1.yaml")

    assert result.problems == []
    assert [loaded.spec.id for loaded in result.specs] == ["q2q-claude-v1"]


def test_single_spec_path_and_line() -> None:
    loaded = load(SINGLE_SPEC, path="models/q2q-claude-v1.yaml").specs[0]

    assert loaded.path == "models/q2q-claude-v1.yaml"
    assert loaded.line == 1


def test_single_spec_line_after_comment() -> None:
    # Cross-spec problems (duplicate id, activation clash) are reported at this
    # line, so it must be the spec's first key, not a leading comment.
    text = "# The first Claude classifier.\n\n" + SINGLE_SPEC

    loaded = load(text).specs[0]

    assert loaded.line == 3


def test_single_spec_problem_field() -> None:
    text = SINGLE_SPEC.replace("risk_min_cues: 1", "risk_min_cues: -1")

    problem = only_problem(load(text, path="models/bad.yaml"))

    assert problem.path == "models/bad.yaml"
    assert problem.field == "thresholds.risk_min_cues"
    assert (problem.line, problem.column) == (13, 18)


def test_spec_with_models_key() -> None:
    # A mapping that has an id is a spec, so a stray `models:` key is an unknown field.
    result = load(SINGLE_SPEC + "models: []\n")

    problem = only_problem(result)

    assert problem.field == "models"
    assert problem.message == "unknown field 'models'; did you mean 'model'?"


# --- a models: list ----------------------------------------------------------------------------


def test_guide_models_file_loads() -> None:
    result = load(GUIDE_MODELS_FILE.read_bytes())

    assert result.problems == []
    assert [loaded.spec.id for loaded in result.specs] == ["q2q-claude-v3-enhanced"]


def test_models_list_item_ids() -> None:
    result = load(guide_with_second_item())

    assert result.problems == []
    assert [loaded.spec.id for loaded in result.specs] == [
        "q2q-claude-v3-enhanced",
        "q2q-openai-gpt4o-v1",
    ]


def test_models_list_item_lines() -> None:
    result = load(guide_with_second_item())

    assert [loaded.line for loaded in result.specs] == [2, 18]


def test_models_list_lines_skip_comments() -> None:
    text = (
        "# Registry\nmodels:\n\n  # first\n"
        + SECOND_ITEM.replace("q2q-openai-gpt4o-v1", "first")
        + "  # second\n"
        + SECOND_ITEM.replace("q2q-openai-gpt4o-v1", "second")
    )

    result = load(text)

    assert [loaded.line for loaded in result.specs] == [5, 21]


def test_models_item_problem_path() -> None:
    text = guide_with_second_item(SECOND_ITEM.replace("risk_min_cues: 1", "risk_min_cues: 1.5"))

    problem = only_problem(load(text, path="models/models.yaml"))

    assert str(problem) == (
        "models/models.yaml:30:22: models[1].thresholds.risk_min_cues: "
        "input should be a valid integer, got 1.5"
    )


def test_models_item_missing_threshold() -> None:
    text = guide_with_second_item(SECOND_ITEM.replace("      risk_min_cues: 1\n", ""))

    problem = only_problem(load(text))

    assert problem.field == "models[1].thresholds.risk_min_cues"
    assert problem.message == "missing required field 'risk_min_cues'"
    assert (problem.line, problem.column) == (23, 7)


def test_models_item_unknown_key() -> None:
    text = guide_with_second_item(SECOND_ITEM.replace("    active: true", "    activ: true"))

    problems = load(text).problems

    unknown = [p for p in problems if p.field == "models[1].activ"]
    assert len(unknown) == 1
    assert unknown[0].message == "unknown field 'activ'; did you mean 'active'?"
    assert (unknown[0].line, unknown[0].column) == (32, 5)


def test_models_valid_item_kept() -> None:
    text = guide_with_second_item(SECOND_ITEM.replace("provider: openai", "provider: mistral"))

    result = load(text)

    assert [loaded.spec.id for loaded in result.specs] == ["q2q-claude-v3-enhanced"]
    assert [p.field for p in result.problems] == ["models[1].provider"]


def test_models_item_not_mapping() -> None:
    problem = only_problem(load("models:\n  - hello\n"))

    assert problem.field == "models[0]"
    assert problem.message == "expected a mapping of fields, got str 'hello'"
    assert (problem.line, problem.column) == (2, 5)


def test_models_not_list() -> None:
    problem = only_problem(load("models:\n  id: x\n"))

    assert problem.field == "models"
    assert problem.message == ("'models:' must be a list of specs, each starting with '- id: ...'")
    assert (problem.line, problem.column) == (2, 3)


def test_models_extra_top_key() -> None:
    text = "version: 2\n" + GUIDE_MODELS_FILE.read_text()

    result = load(text)

    problem = only_problem(result)
    assert problem.field == "version"
    assert problem.message == (
        "unknown top-level key 'version' beside 'models:'; "
        "a models file holds only the 'models:' list"
    )
    assert (problem.line, problem.column) == (1, 1)


def test_models_extra_key_keeps_specs() -> None:
    result = load(GUIDE_MODELS_FILE.read_text() + "owner: ml-platform\n")

    assert [loaded.spec.id for loaded in result.specs] == ["q2q-claude-v3-enhanced"]


# --- files that hold no spec -------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="no-bytes"),
        pytest.param(b"# nothing yet\n", id="comment-only"),
        pytest.param(b"---\n", id="document-marker"),
    ],
)
def test_empty_file_problem(content: bytes) -> None:
    result = load(content, path="models/empty.yaml")

    problem = only_problem(result)

    assert str(problem) == (
        "models/empty.yaml:1:1: the file is empty; a spec file holds one spec or a 'models:' list"
    )


def test_empty_file_no_specs() -> None:
    assert load(b"").specs == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        pytest.param("- id: a\n- id: b\n", "a list", id="top-level-list"),
        pytest.param("hello\n", "the value 'hello'", id="top-level-string"),
        pytest.param("42\n", "the value 42", id="top-level-number"),
    ],
)
def test_top_level_not_mapping(text: str, kind: str) -> None:
    problem = only_problem(load(text))

    assert problem.message == (
        "expected a spec (a mapping with id, provider, model, ...) or a mapping with a "
        f"'models:' list, but the file holds {kind}"
    )
    assert (problem.line, problem.column) == (1, 1)


def test_yaml_error_becomes_problem() -> None:
    text = SINGLE_SPEC + "active: true\n"

    problem = only_problem(load(text, path="models/dup.yaml"))

    assert str(problem) == (
        "models/dup.yaml:16:1: duplicate key 'active' (first defined on line 15); keep one of them"
    )


def test_oversized_file_problem() -> None:
    problem = only_problem(load(b"#" * (2 * 1024 * 1024), path="models/big.yaml"))

    assert problem.line is None
    assert problem.location == "models/big.yaml"
    assert "larger than the 1,048,576-byte limit" in problem.message
