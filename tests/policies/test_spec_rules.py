"""Tests of policies.spec_rules (cross-spec checks) and policies.activation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from policies.activation import in_effect, next_cutover
from policies.spec_rules import RecordedIdentity, check_specs
from registry_state.errors import Problem, Severity
from registry_state.loading import LoadedSpec
from registry_state.spec import ModelSpec, SpecBase

NOW = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)

THRESHOLDS: dict[str, Any] = {
    "confidence_increase": 0.8,
    "confidence_decrease": 0.8,
    "belonging_increase": 0.8,
    "belonging_decrease": 0.8,
    "language_comfort_high": 0.9,
    "language_comfort_low": 0.2,
    "employability_min_signals": 1,
    "risk_min_cues": 1,
}


def make_spec(
    model_id: str,
    *,
    provider: str = "claude",
    effective_from: str = "2025-06-01T00:00:00Z",
    active: bool = True,
    model: str = "claude-3-5-sonnet-20241022",
    prompt_version: str = "v2.0",
    thresholds: dict[str, Any] | None = None,
) -> SpecBase:
    return ModelSpec.model_validate(
        {
            "id": model_id,
            "provider": provider,
            "model": model,
            "prompt_version": prompt_version,
            "thresholds": THRESHOLDS | (thresholds or {}),
            "effective_from": effective_from,
            "active": active,
        }
    )


def loaded(model_id: str, *, path: str | None = None, line: int = 1, **fields: Any) -> LoadedSpec:
    return LoadedSpec(
        spec=make_spec(model_id, **fields), path=path or f"models/{model_id}.yaml", line=line
    )


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity is Severity.ERROR]


def warnings(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity is Severity.WARNING]


# --- duplicate ids -----------------------------------------------------------------------------


def test_duplicate_id_names_both() -> None:
    first = loaded("q2q-claude-v2", path="models/a.yaml", line=1)
    second = loaded("q2q-claude-v2", path="models/models.yaml", line=18, active=False)

    problems = check_specs([first, second], now=NOW)

    assert len(problems) == 1
    assert str(problems[0]) == (
        "models/models.yaml:18: id: duplicate id 'q2q-claude-v2', also defined at "
        "models/a.yaml:1; give each spec its own id"
    )
    assert problems[0].related == ("models/a.yaml:1",)


def test_duplicate_id_three_copies() -> None:
    copies = [loaded("dup", path=f"models/{name}.yaml", active=False) for name in ("a", "b", "c")]

    problems = check_specs(copies, now=NOW)

    assert [p.path for p in problems] == ["models/b.yaml", "models/c.yaml"]
    assert all("also defined at models/a.yaml:1" in p.message for p in problems)


def test_distinct_ids_no_problem() -> None:
    specs = [loaded("a", active=False), loaded("b", active=False)]

    assert check_specs(specs, now=NOW) == []


# --- activation clashes ------------------------------------------------------------------------


def test_same_instant_clash_names_both() -> None:
    claude_v2 = loaded("q2q-claude-v2", path="models/v2.yaml", line=2)
    claude_v3 = loaded("q2q-claude-v3", path="models/v3.yaml", line=2)

    problems = errors(check_specs([claude_v2, claude_v3], now=NOW))

    expected = (
        "two active claude models take effect at the same instant 2025-06-01T00:00:00+00:00: "
        "'q2q-claude-v2' (models/v2.yaml:2) and 'q2q-claude-v3' (models/v3.yaml:2); "
        "set 'active: false' on one of them or give it another effective_from"
    )
    assert [p.location for p in problems] == ["models/v2.yaml:2", "models/v3.yaml:2"]
    assert [p.field for p in problems] == ["active", "active"]
    assert [p.message for p in problems] == [expected, expected]


def test_same_instant_clash_related() -> None:
    claude_v2 = loaded("q2q-claude-v2", path="models/v2.yaml", line=2)
    claude_v3 = loaded("q2q-claude-v3", path="models/v3.yaml", line=2)

    problems = errors(check_specs([claude_v2, claude_v3], now=NOW))

    assert [p.related for p in problems] == [("models/v3.yaml:2",), ("models/v2.yaml:2",)]


def test_same_instant_other_offset() -> None:
    # 02:00 at +02:00 is the same instant as 00:00Z, so the two specs clash.
    at_utc = loaded("a", effective_from="2025-06-01T00:00:00Z")
    at_offset = loaded("b", effective_from="2025-06-01T02:00:00+02:00")

    assert len(errors(check_specs([at_utc, at_offset], now=NOW))) == 2


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param({}, {"provider": "openai"}, id="other-provider"),
        pytest.param({}, {"active": False}, id="one-inactive"),
        pytest.param({"active": False}, {"active": False}, id="both-inactive"),
    ],
)
def test_same_instant_no_clash(first: dict[str, Any], second: dict[str, Any]) -> None:
    specs = [loaded("a", **first), loaded("b", **second)]

    assert errors(check_specs(specs, now=NOW)) == []


def test_future_same_instant_clash() -> None:
    first = loaded("a", effective_from="2027-03-01T00:00:00Z")
    second = loaded("b", effective_from="2027-03-01T00:00:00Z")

    assert len(errors(check_specs([first, second], now=NOW))) == 2


def test_future_active_is_cutover() -> None:
    current = loaded("q2q-claude-v2", effective_from="2025-06-01T00:00:00Z")
    scheduled = loaded("q2q-claude-v3", effective_from="2027-03-01T00:00:00Z")

    assert check_specs([current, scheduled], now=NOW) == []


# --- superseded specs --------------------------------------------------------------------------


def test_superseded_active_warned() -> None:
    old = loaded("q2q-claude-v1", effective_from="2025-01-15", line=2)
    new = loaded("q2q-claude-v2", effective_from="2025-06-01T00:00:00Z", line=2)

    problems = check_specs([old, new], now=NOW)

    assert len(problems) == 1
    assert problems[0].severity is Severity.WARNING
    assert str(problems[0]) == (
        "models/q2q-claude-v1.yaml:2: active: 'q2q-claude-v1' is superseded by "
        "'q2q-claude-v2', which took effect later (2025-06-01T00:00:00+00:00); "
        "set 'active: false' here to say so"
    )


def test_superseded_inactive_silent() -> None:
    old = loaded("q2q-claude-v1", effective_from="2025-01-15", active=False)
    new = loaded("q2q-claude-v2", effective_from="2025-06-01T00:00:00Z")

    assert check_specs([old, new], now=NOW) == []


def test_superseded_other_provider_silent() -> None:
    claude = loaded("q2q-claude-v2", effective_from="2025-01-15")
    openai = loaded("q2q-openai-v1", provider="openai", effective_from="2025-09-01T00:00:00Z")

    assert check_specs([claude, openai], now=NOW) == []


def test_superseded_after_cutover() -> None:
    current = loaded("q2q-claude-v2", effective_from="2025-06-01T00:00:00Z")
    scheduled = loaded("q2q-claude-v3", effective_from="2026-01-10T12:00:00Z")

    problems = warnings(check_specs([current, scheduled], now=NOW))

    assert [p.path for p in problems] == ["models/q2q-claude-v2.yaml"]


# --- identity of recorded models ---------------------------------------------------------------


def recorded_from(spec: SpecBase, *, retired: bool = False, **changes: Any) -> RecordedIdentity:
    return RecordedIdentity(spec.id, spec.identity() | changes, retired)


def test_identity_unchanged_no_problem() -> None:
    spec = loaded("q2q-claude-v2")

    recorded = {"q2q-claude-v2": recorded_from(spec.spec)}

    assert check_specs([spec], now=NOW, recorded=recorded) == []


def test_identity_change_rejected() -> None:
    spec = loaded("q2q-claude-v2", model="claude-3-5-sonnet-20250101", line=2)
    before = make_spec("q2q-claude-v2")

    problems = check_specs([spec], now=NOW, recorded={"q2q-claude-v2": recorded_from(before)})

    assert len(problems) == 1
    assert problems[0].field == "model"
    assert problems[0].location == "models/q2q-claude-v2.yaml:2"
    assert problems[0].message == (
        "'q2q-claude-v2' is a recorded model and its identity cannot change "
        "(model: 'claude-3-5-sonnet-20241022' -> 'claude-3-5-sonnet-20250101'); an id is "
        "never reused for another configuration, so restore the recorded values and add "
        "the new configuration under a new id"
    )


def test_identity_threshold_change() -> None:
    spec = loaded("q2q-claude-v2", thresholds={"confidence_increase": 0.85})
    before = make_spec("q2q-claude-v2")

    problems = check_specs([spec], now=NOW, recorded={"q2q-claude-v2": recorded_from(before)})

    assert problems[0].field == "thresholds"
    assert "(thresholds: confidence_increase 0.8 -> 0.85)" in problems[0].message


def test_identity_several_changes() -> None:
    spec = loaded("q2q-claude-v2", provider="openai", prompt_version="v2.1")
    before = make_spec("q2q-claude-v2")

    problems = check_specs([spec], now=NOW, recorded={"q2q-claude-v2": recorded_from(before)})

    assert problems[0].field == "provider"
    assert "provider: 'claude' -> 'openai'; prompt_version: 'v2.0' -> 'v2.1'" in (
        problems[0].message
    )


def test_identity_retired_model() -> None:
    spec = loaded("q2q-claude-v1", prompt_version="v1.1", active=False)
    before = make_spec("q2q-claude-v1", active=False)

    problems = check_specs(
        [spec], now=NOW, recorded={"q2q-claude-v1": recorded_from(before, retired=True)}
    )

    assert problems[0].message.startswith(
        "'q2q-claude-v1' is a recorded retired model and its identity cannot change"
    )


def test_identity_int_probability_unchanged() -> None:
    # The database may return a probability of 1 as an int, which is the same value.
    spec = loaded("q2q-claude-v2", thresholds={"confidence_increase": 1.0})
    recorded_thresholds = spec.spec.identity()["thresholds"] | {"confidence_increase": 1}
    recorded = {"q2q-claude-v2": recorded_from(spec.spec, thresholds=recorded_thresholds)}

    assert check_specs([spec], now=NOW, recorded=recorded) == []


def test_identity_new_id_allowed() -> None:
    spec = loaded("q2q-claude-v3", model="claude-3-5-sonnet-20250101")
    before = make_spec("q2q-claude-v2")

    recorded = {"q2q-claude-v2": recorded_from(before)}

    assert check_specs([spec], now=NOW, recorded=recorded) == []


# --- policies.activation -----------------------------------------------------------------------


def spec(model_id: str, **fields: Any) -> SpecBase:
    return make_spec(model_id, **fields)


def test_in_effect_latest_past() -> None:
    old = spec("v1", effective_from="2025-01-15")
    new = spec("v2", effective_from="2025-06-01T00:00:00Z")

    assert in_effect([new, old], NOW) == {"claude": new}


def test_in_effect_skips_future() -> None:
    current = spec("v2", effective_from="2025-06-01T00:00:00Z")
    scheduled = spec("v3", effective_from="2027-03-01T00:00:00Z")

    assert in_effect([current, scheduled], NOW) == {"claude": current}


def test_in_effect_skips_inactive() -> None:
    current = spec("v1", effective_from="2025-01-15")
    inactive = spec("v2", effective_from="2025-06-01T00:00:00Z", active=False)

    assert in_effect([current, inactive], NOW) == {"claude": current}


def test_in_effect_at_exact_instant() -> None:
    starting = spec("v3", effective_from="2026-01-10T12:00:00Z")

    assert in_effect([starting], NOW) == {"claude": starting}


def test_in_effect_per_provider() -> None:
    claude = spec("c", effective_from="2025-06-01T00:00:00Z")
    openai = spec("o", provider="openai", effective_from="2025-09-01T00:00:00Z")

    assert in_effect([claude, openai], NOW) == {"claude": claude, "openai": openai}


def test_in_effect_none_active() -> None:
    assert in_effect([spec("v1", active=False)], NOW) == {}


def test_in_effect_tie_order_free() -> None:
    a = spec("a")
    b = spec("b")

    assert in_effect([a, b], NOW) == in_effect([b, a], NOW)


def test_next_cutover_earliest_future() -> None:
    specs = [
        spec("v2", effective_from="2025-06-01T00:00:00Z"),
        spec("v4", effective_from="2027-06-01T00:00:00Z"),
        spec("v3", effective_from="2027-03-01T00:00:00Z"),
    ]

    assert next_cutover(specs, NOW) == dt.datetime(2027, 3, 1, tzinfo=dt.UTC)


def test_next_cutover_ignores_inactive() -> None:
    specs = [spec("v3", effective_from="2027-03-01T00:00:00Z", active=False)]

    assert next_cutover(specs, NOW) is None


def test_next_cutover_excludes_now() -> None:
    specs = [spec("v3", effective_from="2026-01-10T12:00:00Z")]

    assert next_cutover(specs, NOW) is None


def test_next_cutover_any_provider() -> None:
    specs = [
        spec("c", effective_from="2027-06-01T00:00:00Z"),
        spec("o", provider="openai", effective_from="2026-02-01T00:00:00Z"),
    ]

    assert next_cutover(specs, NOW) == dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
