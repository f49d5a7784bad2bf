"""Which fields `activate`, `deactivate` and `new` change: pure functions over loaded specs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from policies.activation import in_effect
from reconciler.authoring import changeset
from reconciler.authoring.changeset import FieldEdit
from registry_state.errors import SpecEditError
from registry_state.loading import LoadedSpec, SourceFile, load_spec_file
from registry_state.spec import ModelSpec
from support.git_repo import spec_yaml

NOW = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 2, 1, 9, 30, tzinfo=dt.UTC)


def specs(*entries: tuple[str, dict[str, Any]]) -> list[LoadedSpec]:
    loaded: list[LoadedSpec] = []
    for spec_id, fields in entries:
        path = f"models/{spec_id}.yaml"
        result = load_spec_file(SourceFile(path, spec_yaml(spec_id, **fields).encode()), ModelSpec)
        assert not result.problems, result.problems
        loaded += result.specs
    return loaded


def claude_pair(**v2: Any) -> list[LoadedSpec]:
    return specs(
        ("q2q-claude-v1", {"active": True, "effective_from": "2025-01-15"}),
        ("q2q-claude-v2", {"effective_from": "2025-06-01", **v2}),
    )


def test_activate_deactivates_current() -> None:
    changes = changeset.activate(claude_pair(), "q2q-claude-v2", now=NOW, directory="models")

    assert changes.edits == (
        FieldEdit("models/q2q-claude-v2.yaml", "q2q-claude-v2", ("active",), False, True),
        FieldEdit("models/q2q-claude-v1.yaml", "q2q-claude-v1", ("active",), True, False),
    )
    assert changes.subject == "Activate q2q-claude-v2, deactivate q2q-claude-v1"
    assert changes.notes == ()


def test_activate_leaves_other_providers() -> None:
    loaded = claude_pair() + specs(
        ("q2q-openai-v1", {"provider": "openai", "model": "gpt-4o", "active": True}),
    )

    changes = changeset.activate(loaded, "q2q-claude-v2", now=NOW, directory="models")

    assert {edit.spec_id for edit in changes.edits} == {"q2q-claude-v1", "q2q-claude-v2"}


def test_activate_keeps_scheduled_rival() -> None:
    loaded = claude_pair() + specs(
        ("q2q-claude-v3", {"active": True, "effective_from": '"2026-02-01T09:30:00Z"'}),
    )

    changes = changeset.activate(loaded, "q2q-claude-v2", now=NOW, directory="models")

    assert [edit.spec_id for edit in changes.edits] == ["q2q-claude-v2", "q2q-claude-v1"]
    assert changes.notes == (
        "'q2q-claude-v3' stays scheduled to take over claude at 2026-02-01T09:30:00Z; run "
        "'q2q deactivate q2q-claude-v3' to cancel that cutover",
    )


def test_activate_already_active_is_empty() -> None:
    changes = changeset.activate(claude_pair(), "q2q-claude-v1", now=NOW, directory="models")

    assert changes.is_empty
    assert changes.notes == ("'q2q-claude-v1' is already the active claude model; "
                             "nothing to change",)


def test_activate_superseded_spec_deactivates_later() -> None:
    loaded = claude_pair(active=True)

    changes = changeset.activate(loaded, "q2q-claude-v1", now=NOW, directory="models")

    assert changes.edits == (
        FieldEdit("models/q2q-claude-v2.yaml", "q2q-claude-v2", ("active",), True, False),
    )
    assert changes.subject == "Activate q2q-claude-v1, deactivate q2q-claude-v2"


def test_activate_future_spec_rejected() -> None:
    loaded = claude_pair(effective_from='"2026-03-01T00:00:00Z"')

    with pytest.raises(SpecEditError) as error:
        changeset.activate(loaded, "q2q-claude-v2", now=NOW, directory="models")

    assert str(error.value) == (
        "models/q2q-claude-v2.yaml:1: effective_from: 'q2q-claude-v2' takes effect at "
        "2026-03-01T00:00:00Z, which is in the future, so it cannot be activated now; run "
        "'q2q activate q2q-claude-v2 --at 2026-03-01T00:00:00Z' to schedule the cutover, or "
        "set an earlier effective_from"
    )


def test_activate_unknown_id_suggests() -> None:
    with pytest.raises(SpecEditError) as error:
        changeset.activate(claude_pair(), "q2q-claude-v9", now=NOW, directory="models")

    assert str(error.value) == (
        "no spec with id 'q2q-claude-v9' under models (did you mean q2q-claude-v1, "
        "q2q-claude-v2?); check the id, or pass the spec directory with --path"
    )


def test_schedule_sets_effective_from() -> None:
    changes = changeset.activate(
        claude_pair(), "q2q-claude-v2", now=NOW, directory="models", at=LATER,
        at_text="2026-02-01T09:30:00Z",
    )

    assert changes.edits == (
        FieldEdit("models/q2q-claude-v2.yaml", "q2q-claude-v2", ("effective_from",),
                  dt.datetime(2025, 6, 1, tzinfo=dt.UTC), "2026-02-01T09:30:00Z"),
        FieldEdit("models/q2q-claude-v2.yaml", "q2q-claude-v2", ("active",), False, True),
    )
    assert changes.subject == "Schedule q2q-claude-v2 to take effect at 2026-02-01T09:30:00Z"
    assert changes.notes == (
        "'q2q-claude-v1' stays the active claude model until 2026-02-01T09:30:00Z; after the "
        "cutover, 'q2q validate' warns that it is superseded until you run "
        "'q2q deactivate q2q-claude-v1'",
    )


def test_schedule_in_past_rejected() -> None:
    with pytest.raises(SpecEditError) as error:
        changeset.activate(claude_pair(), "q2q-claude-v2", now=NOW, directory="models",
                           at=NOW - dt.timedelta(days=1), at_text="2026-01-09T12:00:00Z")

    assert str(error.value) == (
        "--at 2026-01-09T12:00:00Z is not in the future (now is 2026-01-10T12:00:00Z); leave "
        "out --at to activate 'q2q-claude-v2' now"
    )


def test_schedule_twice_is_empty() -> None:
    loaded = claude_pair(active=True, effective_from='"2026-02-01T09:30:00Z"')

    changes = changeset.activate(loaded, "q2q-claude-v2", now=NOW, directory="models",
                                 at=LATER, at_text="2026-02-01T09:30:00Z")

    assert changes.is_empty


def test_deactivate_current_names_successor() -> None:
    loaded = claude_pair(active=True, effective_from="2025-06-01")

    changes = changeset.deactivate(loaded, "q2q-claude-v2", now=NOW, directory="models")

    assert changes.edits == (
        FieldEdit("models/q2q-claude-v2.yaml", "q2q-claude-v2", ("active",), True, False),
    )
    assert changes.notes == ("'q2q-claude-v1' becomes the active claude model, because it is "
                             "the latest other active spec in effect",)


def test_deactivate_last_active_warns() -> None:
    changes = changeset.deactivate(claude_pair(), "q2q-claude-v1", now=NOW, directory="models")

    assert changes.notes == ("claude has no active model after this change; run "
                             "'q2q activate ID' for another claude spec to replace it",)


def test_deactivate_scheduled_cancels() -> None:
    loaded = claude_pair(active=True, effective_from='"2026-02-01T09:30:00Z"')

    changes = changeset.deactivate(loaded, "q2q-claude-v2", now=NOW, directory="models")

    assert changes.notes == ("this cancels the cutover to 'q2q-claude-v2' scheduled for "
                             "2026-02-01T09:30:00Z",)


def test_deactivate_inactive_is_empty() -> None:
    changes = changeset.deactivate(claude_pair(), "q2q-claude-v2", now=NOW, directory="models")

    assert changes.is_empty
    assert changes.notes == ("'q2q-claude-v2' is already inactive; nothing to change",)


def test_copy_single_file_targets_new_file() -> None:
    changes = changeset.copy_spec(
        claude_pair(), "q2q-claude-v1", new_id="q2q-claude-v1.1", directory="models",
        overrides={("thresholds", "risk_min_cues"): 2, ("model",): "claude-next"},
    )

    assert changes.copy is not None
    assert changes.copy.target_path == "models/q2q-claude-v1.1.yaml"
    assert changes.copy.edits == (
        FieldEdit("models/q2q-claude-v1.1.yaml", "q2q-claude-v1.1", ("id",), "q2q-claude-v1",
                  "q2q-claude-v1.1"),
        FieldEdit("models/q2q-claude-v1.1.yaml", "q2q-claude-v1.1", ("active",), True, False),
        FieldEdit("models/q2q-claude-v1.1.yaml", "q2q-claude-v1.1",
                  ("thresholds", "risk_min_cues"), 1, 2),
        FieldEdit("models/q2q-claude-v1.1.yaml", "q2q-claude-v1.1", ("model",),
                  "claude-3-5-sonnet-20241022", "claude-next"),
    )
    assert changes.subject == "Add q2q-claude-v1.1, copied from q2q-claude-v1"


def test_copy_in_list_file_stays() -> None:
    changes = changeset.copy_spec(
        claude_pair(), "q2q-claude-v2", new_id="q2q-claude-v3", directory="models",
        list_files={"models/q2q-claude-v2.yaml"},
    )

    assert changes.copy is not None
    assert changes.copy.target_path == "models/q2q-claude-v2.yaml"


def test_copy_unchanged_value_skipped() -> None:
    changes = changeset.copy_spec(
        claude_pair(), "q2q-claude-v2", new_id="q2q-claude-v3", directory="models",
        overrides={("thresholds", "risk_min_cues"): 1},
    )

    assert changes.copy is not None
    assert [edit.field for edit in changes.copy.edits] == [("id",)]


@pytest.mark.parametrize(
    ("new_id", "overrides", "message"),
    [
        pytest.param("Q2Q-Upper", {}, "'Q2Q-Upper' is not a valid id; use lowercase letters, "
                     "digits, '.' and '-', starting with a letter or digit, at most 100 "
                     "characters", id="invalid-id"),
        pytest.param("q2q-claude-v1", {}, "models/q2q-claude-v1.yaml:1: id 'q2q-claude-v1' "
                     "already exists; pick a new id", id="existing-id"),
        pytest.param("q2q-claude-v3", {("thresholds", "toxicity"): 0.5},
                     "unknown threshold 'toxicity'; the thresholds are confidence_increase, "
                     "confidence_decrease, belonging_increase, belonging_decrease, "
                     "language_comfort_high, language_comfort_low, employability_min_signals, "
                     "risk_min_cues", id="unknown-threshold"),
        pytest.param("q2q-claude-v3", {("provider",): "openai"},
                     "'provider' cannot be set on a copy", id="provider-not-settable"),
    ],
)
def test_copy_rejects_bad_request(
    new_id: str, overrides: dict[tuple[str, ...], Any], message: str
) -> None:
    with pytest.raises(SpecEditError) as error:
        changeset.copy_spec(claude_pair(), "q2q-claude-v2", new_id=new_id, directory="models",
                            overrides=overrides)

    assert str(error.value) == message


def test_activated_specs_have_one_in_effect() -> None:
    loaded = claude_pair() + specs(("q2q-claude-v3", {"effective_from": "2025-09-01"}))
    changes = changeset.activate(loaded, "q2q-claude-v2", now=NOW, directory="models")
    after = {edit.spec_id: edit.after for edit in changes.edits}

    current = in_effect(
        [spec.spec.model_copy(update={"active": after.get(spec.spec.id, spec.spec.active)})
         for spec in loaded],
        NOW,
    )

    assert current["claude"].id == "q2q-claude-v2"
