"""Tests of registry_state.spec: the spec schema, normalisation and config_hash.

Specs are written as YAML text and go through `load_spec_file`, so each case
checks the field path and message a person reads, not only pydantic's verdict.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_state.errors import InvalidSpecsError, Problem
from registry_state.loading import SourceFile, load_spec_file
from registry_state.repo_settings import parse_settings
from registry_state.spec import ModelSpec, SpecBase, spec_model_for
from registry_state.taxonomy import DEFAULT_TAXONOMY, ThresholdKind

GUIDE_MODELS_FILE = Path(__file__).parent.parent / "data" / "governance_guide_models.yaml"

FIELDS: dict[str, str] = {
    "id": "q2q-claude-v2-multilingual",
    "provider": "claude",
    "model": "claude-3-5-sonnet-20241022",
    "prompt_version": "v2.0",
    "effective_from": '"2025-06-01T00:00:00Z"',
    "active": "true",
    "description": '"Multilingual Q2Q classifier"',
}

THRESHOLDS: dict[str, str] = {
    "confidence_increase": "0.80",
    "confidence_decrease": "0.80",
    "belonging_increase": "0.80",
    "belonging_decrease": "0.80",
    "language_comfort_high": "0.90",
    "language_comfort_low": "0.20",
    "employability_min_signals": "1",
    "risk_min_cues": "1",
}

CUSTOM_SETTINGS = b"""\
taxonomy:
  thresholds:
    toxicity: probability
    flag_count: count
"""


def spec_text(thresholds: dict[str, str | None] | None = None, **fields: str | None) -> str:
    """Render a spec. Each value is raw YAML, and None leaves the key out."""
    values = {**FIELDS, **fields}
    threshold_values = {**THRESHOLDS, **(thresholds or {})}
    lines = []
    for name, value in values.items():
        if name == "effective_from":
            lines.append("thresholds:")
            lines.extend(
                f"  {label}: {raw}" for label, raw in threshold_values.items() if raw is not None
            )
        if value is not None:
            lines.append(f"{name}: {value}")
    return "\n".join(lines) + "\n"


def problems_of(text: str, model: type[SpecBase] = ModelSpec) -> list[Problem]:
    result = load_spec_file(SourceFile("models/spec.yaml", text.encode()), model)
    return result.problems


def valid_spec(text: str, model: type[SpecBase] = ModelSpec) -> SpecBase:
    result = load_spec_file(SourceFile("models/spec.yaml", text.encode()), model)
    assert result.problems == []
    assert len(result.specs) == 1
    return result.specs[0].spec


def problem_for(problems: list[Problem], field: str) -> Problem:
    """Return the one problem about `field`, failing with the full list otherwise."""
    matching = [p for p in problems if p.field == field]
    assert len(matching) == 1, [str(p) for p in problems]
    return matching[0]


# --- valid specs -------------------------------------------------------------------------------


def test_guide_example_validates() -> None:
    # The governance guide's models.yaml example, copied unchanged.
    result = load_spec_file(
        SourceFile("models/models.yaml", GUIDE_MODELS_FILE.read_bytes()), ModelSpec
    )

    assert result.problems == []
    assert [loaded.spec.id for loaded in result.specs] == ["q2q-claude-v3-enhanced"]


def test_guide_example_values() -> None:
    result = load_spec_file(
        SourceFile("models/models.yaml", GUIDE_MODELS_FILE.read_bytes()), ModelSpec
    )
    spec = result.specs[0].spec

    assert spec.provider == "claude"
    assert spec.model == "claude-3-5-sonnet-20250101"
    assert spec.prompt_version == "v3.0"
    assert spec.effective_from == dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
    assert spec.active is False
    assert spec.threshold_values()["risk_min_cues"] == 1


def test_spec_without_description_validates() -> None:
    spec = valid_spec(spec_text(description=None))

    assert spec.description is None


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"id": "a"}, id="id-one-char"),
        pytest.param({"id": "a" * 100}, id="id-100-chars"),
        pytest.param({"id": "1.2-x"}, id="id-digit-dot-hyphen"),
        pytest.param({"provider": "openai"}, id="provider-openai"),
        pytest.param({"provider": "gemini"}, id="provider-gemini"),
        pytest.param({"prompt_version": "v2.0"}, id="prompt-major-minor"),
        pytest.param({"prompt_version": "v2.0.1"}, id="prompt-major-minor-patch"),
        pytest.param({"prompt_version": "v10.20.30"}, id="prompt-multi-digit"),
        pytest.param({"active": "false"}, id="active-false"),
        pytest.param({"active": "True"}, id="active-capitalised"),
        pytest.param({"description": "null"}, id="description-null"),
    ],
)
def test_field_value_accepted(fields: dict[str, str]) -> None:
    assert problems_of(spec_text(**fields)) == []


@pytest.mark.parametrize(
    "thresholds",
    [
        pytest.param({"confidence_increase": "0"}, id="probability-zero-int"),
        pytest.param({"confidence_increase": "1"}, id="probability-one-int"),
        pytest.param({"confidence_increase": "0.0"}, id="probability-zero-float"),
        pytest.param({"confidence_increase": "1.0"}, id="probability-one-float"),
        pytest.param({"confidence_increase": "8e-1"}, id="probability-exponent"),
        pytest.param({"risk_min_cues": "0"}, id="count-zero"),
        pytest.param({"risk_min_cues": "100"}, id="count-hundred"),
        pytest.param({"risk_min_cues": "0x10"}, id="count-hex"),
    ],
)
def test_threshold_value_accepted(thresholds: dict[str, str]) -> None:
    assert problems_of(spec_text(thresholds)) == []


# --- invalid specs: each names its field -------------------------------------------------------

INVALID_FIELDS = [
    pytest.param(
        {"promt_version": "v2.0", "prompt_version": None},
        "promt_version",
        "unknown field 'promt_version'; did you mean 'prompt_version'?",
        id="misspelt-field",
    ),
    pytest.param(
        {"colour": "red"},
        "colour",
        "unknown field 'colour'; allowed fields: id, provider, model, prompt_version, "
        "thresholds, effective_from, active, description",
        id="unknown-field",
    ),
    pytest.param(
        {"id": "Q2Q-Claude"},
        "id",
        "invalid value 'Q2Q-Claude'; use lowercase letters, digits, dots and hyphens, "
        "starting with a letter or digit, such as q2q-claude-v2-multilingual",
        id="id-uppercase",
    ),
    pytest.param(
        {"id": "-q2q"},
        "id",
        "invalid value '-q2q'; use lowercase letters, digits, dots and hyphens, "
        "starting with a letter or digit, such as q2q-claude-v2-multilingual",
        id="id-leading-hyphen",
    ),
    pytest.param(
        {"id": "q2q_claude"},
        "id",
        "invalid value 'q2q_claude'; use lowercase letters, digits, dots and hyphens, "
        "starting with a letter or digit, such as q2q-claude-v2-multilingual",
        id="id-underscore",
    ),
    pytest.param(
        {"id": "a" * 101},
        "id",
        f"string should have at most 100 characters, got '{'a' * 101}'",
        id="id-101-chars",
    ),
    pytest.param(
        {"id": "''"}, "id", "string should have at least 1 character, got ''", id="id-empty"
    ),
    pytest.param({"id": None}, "id", "missing required field 'id'", id="id-missing"),
    pytest.param(
        {"provider": "mistral"},
        "provider",
        "invalid value 'mistral'; allowed values: 'claude', 'openai' or 'gemini'",
        id="provider-unknown",
    ),
    pytest.param(
        {"provider": "Claude"},
        "provider",
        "invalid value 'Claude'; allowed values: 'claude', 'openai' or 'gemini'",
        id="provider-capitalised",
    ),
    pytest.param(
        {"model": "''"},
        "model",
        "string should have at least 1 character, got ''",
        id="model-empty",
    ),
    pytest.param(
        {"prompt_version": '"2.0"'},
        "prompt_version",
        "invalid value '2.0'; write it as v<major>.<minor> or v<major>.<minor>.<patch>, "
        "such as v2.0",
        id="prompt-no-v",
    ),
    pytest.param(
        {"prompt_version": "v2"},
        "prompt_version",
        "invalid value 'v2'; write it as v<major>.<minor> or v<major>.<minor>.<patch>, "
        "such as v2.0",
        id="prompt-major-only",
    ),
    pytest.param(
        {"prompt_version": "v2.0.1.1"},
        "prompt_version",
        "invalid value 'v2.0.1.1'; write it as v<major>.<minor> or v<major>.<minor>.<patch>, "
        "such as v2.0",
        id="prompt-four-parts",
    ),
    pytest.param(
        {"prompt_version": "2.0"},
        "prompt_version",
        "expected a string, got 2.0; write it as v<major>.<minor> or "
        "v<major>.<minor>.<patch>, such as v2.0",
        id="prompt-unquoted-float",
    ),
    pytest.param({"active": "yes"}, "active", "expected true or false, got 'yes'", id="active-yes"),
    pytest.param(
        {"active": '"true"'},
        "active",
        "expected true or false, got 'true', a string: YAML 1.2 reads only unquoted true "
        "and false as booleans",
        id="active-quoted",
    ),
    pytest.param({"active": "1"}, "active", "expected true or false, got 1", id="active-one"),
    pytest.param({"active": "on"}, "active", "expected true or false, got 'on'", id="active-on"),
    pytest.param(
        {"active": "null"}, "active", "expected true or false, got None", id="active-null"
    ),
    pytest.param(
        {"description": "5"},
        "description",
        "input should be a valid string, got 5",
        id="description-number",
    ),
    pytest.param(
        {"description": "x" * 2001},
        "description",
        "string should have at most 2000 characters",
        id="description-too-long",
    ),
]


@pytest.mark.parametrize(("fields", "field", "message"), INVALID_FIELDS)
def test_invalid_field_named(fields: dict[str, str | None], field: str, message: str) -> None:
    problem = problem_for(problems_of(spec_text(**fields)), field)

    assert problem.message.startswith(message)


def test_misspelt_field_also_missing() -> None:
    problems = problems_of(spec_text(promt_version="v2.0", prompt_version=None))

    missing = problem_for(problems, "prompt_version")

    assert missing.message == "missing required field 'prompt_version'"


def test_misspelt_field_at_key() -> None:
    problems = problems_of(spec_text(promt_version="v2.0", prompt_version=None))

    problem = problem_for(problems, "promt_version")

    assert (problem.line, problem.column) == (16, 1)


def test_invalid_value_at_value() -> None:
    problem = problem_for(problems_of(spec_text(provider="mistral")), "provider")

    assert (problem.line, problem.column) == (2, 11)


def test_thresholds_not_mapping() -> None:
    text = spec_text({name: None for name in THRESHOLDS}).replace("thresholds:", "thresholds: 5")

    problem = problem_for(problems_of(text), "thresholds")

    assert problem.message == "expected a mapping of fields, got int 5"


# --- thresholds --------------------------------------------------------------------------------


@pytest.mark.parametrize("label", DEFAULT_TAXONOMY.names)
def test_threshold_required(label: str) -> None:
    problem = problem_for(problems_of(spec_text({label: None})), f"thresholds.{label}")

    assert problem.message == f"missing required field '{label}'"


def test_threshold_misspelt_suggested() -> None:
    text = spec_text({"risk_min_cues": None, "risk_min_cue": "1"})

    problem = problem_for(problems_of(text), "thresholds.risk_min_cue")

    assert problem.message == "unknown field 'risk_min_cue'; did you mean 'risk_min_cues'?"


INVALID_THRESHOLDS = [
    pytest.param(
        "confidence_increase",
        "1.5",
        "input should be less than or equal to 1, got 1.5",
        id="probability-above-one",
    ),
    pytest.param(
        "language_comfort_low",
        "-0.1",
        "input should be greater than or equal to 0, got -0.1",
        id="probability-negative",
    ),
    pytest.param(
        "confidence_increase",
        "2",
        "input should be less than or equal to 1, got 2",
        id="probability-int-two",
    ),
    pytest.param(
        "confidence_increase", "true", "input should be a valid number", id="probability-bool"
    ),
    pytest.param(
        "confidence_increase",
        '"0.8"',
        "input should be a valid number, got '0.8'",
        id="probability-quoted",
    ),
    pytest.param(
        "confidence_increase",
        "yes",
        "input should be a valid number, got 'yes'",
        id="probability-yes",
    ),
    pytest.param(
        "confidence_increase", "null", "input should be a valid number", id="probability-null"
    ),
    pytest.param(
        "confidence_increase",
        ".nan",
        "input should be greater than or equal to 0",
        id="probability-nan",
    ),
    pytest.param(
        "risk_min_cues", "1.5", "input should be a valid integer, got 1.5", id="count-fraction"
    ),
    pytest.param(
        "risk_min_cues", "1.0", "input should be a valid integer, got 1.0", id="count-float"
    ),
    pytest.param(
        "employability_min_signals",
        "-1",
        "input should be greater than or equal to 0, got -1",
        id="count-negative",
    ),
    pytest.param("risk_min_cues", "true", "input should be a valid integer", id="count-bool"),
    pytest.param(
        "risk_min_cues", '"1"', "input should be a valid integer, got '1'", id="count-quoted"
    ),
]


@pytest.mark.parametrize(("label", "raw", "message"), INVALID_THRESHOLDS)
def test_threshold_value_rejected(label: str, raw: str, message: str) -> None:
    problem = problem_for(problems_of(spec_text({label: raw})), f"thresholds.{label}")

    assert problem.message.startswith(message)


def test_probability_normalised_to_float() -> None:
    spec = valid_spec(spec_text({"confidence_increase": "1"}))

    value = spec.threshold_values()["confidence_increase"]

    assert value == 1.0
    assert type(value) is float


def test_count_stays_int() -> None:
    spec = valid_spec(spec_text())

    value = spec.threshold_values()["risk_min_cues"]

    assert type(value) is int


# --- effective_from ----------------------------------------------------------------------------

MIDNIGHT_JUNE_FIRST = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param('"2025-06-01T00:00:00Z"', MIDNIGHT_JUNE_FIRST, id="quoted-utc"),
        pytest.param("2025-06-01T00:00:00Z", MIDNIGHT_JUNE_FIRST, id="plain-utc"),
        pytest.param('"2025-06-01T02:00:00+02:00"', MIDNIGHT_JUNE_FIRST, id="positive-offset"),
        pytest.param("2025-05-31T19:00:00-05:00", MIDNIGHT_JUNE_FIRST, id="negative-offset"),
        pytest.param("2025-06-01T00:00:00+00:00", MIDNIGHT_JUNE_FIRST, id="zero-offset"),
        pytest.param("2025-06-01", MIDNIGHT_JUNE_FIRST, id="date-is-midnight-utc"),
        pytest.param('"2025-06-01"', MIDNIGHT_JUNE_FIRST, id="quoted-date"),
        pytest.param(
            "2025-06-01T05:30:00.250+05:30",
            dt.datetime(2025, 6, 1, 0, 0, 0, 250_000, tzinfo=dt.UTC),
            id="fractional-seconds",
        ),
    ],
)
def test_effective_from_normalised_utc(raw: str, expected: dt.datetime) -> None:
    spec = valid_spec(spec_text(effective_from=raw))

    assert spec.effective_from == expected
    assert spec.effective_from.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(
            "2025-06-01T00:00:00",
            "'2025-06-01T00:00:00' has no UTC offset, so the instant is ambiguous; "
            "append 'Z' for UTC, as in 2025-06-01T00:00:00Z",
            id="no-offset",
        ),
        pytest.param(
            '"2025-06-01 08:30:00"',
            "'2025-06-01 08:30:00' has no UTC offset, so the instant is ambiguous; "
            "append 'Z' for UTC, as in 2025-06-01T08:30:00Z",
            id="no-offset-space",
        ),
        pytest.param(
            "soon",
            "'soon' is not an ISO 8601 datetime; write it like 2025-12-01T00:00:00Z",
            id="word",
        ),
        pytest.param(
            "2025-13-01",
            "'2025-13-01' is not a date; write YYYY-MM-DD or an ISO 8601 datetime with an "
            "offset, such as 2025-12-01T00:00:00Z",
            id="month-13",
        ),
        pytest.param(
            "2025-02-30T00:00:00Z",
            "'2025-02-30T00:00:00Z' is not an ISO 8601 datetime; write it like "
            "2025-12-01T00:00:00Z",
            id="february-30",
        ),
        pytest.param(
            "20250601",
            "expected an ISO 8601 date or datetime string, got int 20250601; "
            'write it like "2025-12-01T00:00:00Z"',
            id="unquoted-number",
        ),
        pytest.param(
            "null",
            "expected an ISO 8601 date or datetime string, got NoneType None; "
            'write it like "2025-12-01T00:00:00Z"',
            id="null",
        ),
    ],
)
def test_effective_from_rejected(raw: str, message: str) -> None:
    problem = problem_for(problems_of(spec_text(effective_from=raw)), "effective_from")

    assert problem.message == message


def test_effective_from_error_at_value() -> None:
    problem = problem_for(problems_of(spec_text(effective_from="soon")), "effective_from")

    assert (problem.line, problem.column) == (14, 17)


# --- config_hash -------------------------------------------------------------------------------


def hash_of(thresholds: dict[str, str | None] | None = None, **fields: str | None) -> str:
    return valid_spec(spec_text(thresholds, **fields)).config_hash()


def test_config_hash_is_sha256_hex() -> None:
    digest = hash_of()

    assert len(digest) == 64
    assert set(digest) <= set("0123456789abcdef")


def test_config_hash_float_spellings() -> None:
    hashes = {hash_of({"confidence_increase": raw}) for raw in ("0.8", ".80", "8e-1", "0.800")}

    assert len(hashes) == 1


def test_config_hash_int_probability() -> None:
    assert hash_of({"belonging_increase": "1"}) == hash_of({"belonging_increase": "1.0"})


def test_config_hash_ignores_threshold_order() -> None:
    reordered = dict(reversed(list(THRESHOLDS.items())))
    text = spec_text({name: None for name in THRESHOLDS}).replace(
        "thresholds:\n", "thresholds:\n" + "".join(f"  {k}: {v}\n" for k, v in reordered.items())
    )

    assert valid_spec(text).config_hash() == hash_of()


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"id": "another-id"}, id="id"),
        pytest.param({"active": "false"}, id="active"),
        pytest.param({"effective_from": '"2026-01-01T00:00:00Z"'}, id="effective-from"),
        pytest.param({"description": '"reworded"'}, id="description"),
    ],
)
def test_config_hash_ignores_field(fields: dict[str, str]) -> None:
    assert hash_of(**fields) == hash_of()


IDENTITY_CHANGES = [
    pytest.param({"provider": "openai"}, {}, id="provider"),
    pytest.param({"model": "claude-3-5-sonnet-20250101"}, {}, id="model"),
    pytest.param({"prompt_version": "v2.1"}, {}, id="prompt-version"),
    pytest.param({"prompt_version": "v2.0.0"}, {}, id="prompt-version-patch"),
    *(
        pytest.param({}, {label: "0.55" if kind is ThresholdKind.PROBABILITY else "7"}, id=label)
        for label, kind in DEFAULT_TAXONOMY.thresholds
    ),
]


@pytest.mark.parametrize(("fields", "thresholds"), IDENTITY_CHANGES)
def test_config_hash_identity_change(fields: dict[str, str], thresholds: dict[str, str]) -> None:
    assert hash_of(thresholds, **fields) != hash_of()


@given(st.floats(min_value=0, max_value=1))
def test_config_hash_spelling_property(probability: float) -> None:
    plain = hash_of({"language_comfort_high": repr(probability)})
    exponent = hash_of({"language_comfort_high": f"{probability:.17e}"})

    assert plain == exponent


# --- custom taxonomy from registry.yaml --------------------------------------------------------


def custom_model() -> type[SpecBase]:
    settings = parse_settings(CUSTOM_SETTINGS, path="registry.yaml")
    return spec_model_for(settings.label_taxonomy())


def custom_spec_text(**thresholds: str) -> str:
    values = {"toxicity": "0.7", "flag_count": "2", **thresholds}
    return spec_text({name: None for name in THRESHOLDS} | values)


def test_custom_taxonomy_validates() -> None:
    spec = valid_spec(custom_spec_text(), custom_model())

    assert spec.threshold_values() == {"toxicity": 0.7, "flag_count": 2}


def test_custom_taxonomy_rejects_default() -> None:
    problems = problems_of(spec_text(), custom_model())

    problem = problem_for(problems, "thresholds.confidence_increase")

    assert problem.message.startswith("unknown field 'confidence_increase'; allowed fields: ")


def test_custom_taxonomy_requires_label() -> None:
    problems = problems_of(spec_text(), custom_model())

    problem = problem_for(problems, "thresholds.toxicity")

    assert problem.message == "missing required field 'toxicity'"


def test_custom_probability_bounded() -> None:
    problems = problems_of(custom_spec_text(toxicity="1.5"), custom_model())

    problem = problem_for(problems, "thresholds.toxicity")

    assert problem.message == "input should be less than or equal to 1, got 1.5"


def test_custom_count_integer() -> None:
    problems = problems_of(custom_spec_text(flag_count="0.5"), custom_model())

    problem = problem_for(problems, "thresholds.flag_count")

    assert problem.message == "input should be a valid integer, got 0.5"


def test_missing_settings_default_taxonomy() -> None:
    settings = parse_settings(None, path="registry.yaml")

    assert settings.label_taxonomy() == DEFAULT_TAXONOMY


def test_spec_model_cached() -> None:
    assert custom_model() is custom_model()


@pytest.mark.parametrize(
    "label",
    [
        pytest.param("model_dump", id="pydantic-method"),
        pytest.param("model_config", id="pydantic-config"),
        pytest.param("_hidden", id="leading-underscore"),
        pytest.param("''", id="empty"),
    ],
)
def test_taxonomy_reserved_label_rejected(label: str) -> None:
    # Such names cannot become fields of the thresholds model: pydantic raises
    # ValueError for some and silently drops others. registry.yaml must be
    # rejected with a positioned problem instead.
    content = f"taxonomy:\n  thresholds:\n    {label}: count\n".encode()

    with pytest.raises(InvalidSpecsError) as caught:
        parse_settings(content, path="registry.yaml")

    assert caught.value.problems[0].line == 3
