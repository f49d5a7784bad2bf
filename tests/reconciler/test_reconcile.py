"""Reconcile passes over a real git repository into SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler.reconcile import PassFailedError, Reconciler
from registry_state import store
from registry_state.changes import ChangeKind
from registry_state.errors import InvalidSpecsError, MassRetireRefusedError
from registry_state.tables import audit_records, model_registry, reconcile_runs
from support.git_repo import Clock, ModelsRepo, spec_yaml


def models_by_id(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(model_registry)).all()
    return {row.model_id: row for row in rows}


def active_ids(engine: sa.Engine) -> set[str]:
    return {model_id for model_id, row in models_by_id(engine).items() if row.active}


def audit_rows(engine: sa.Engine) -> list[Any]:
    with engine.connect() as connection:
        return connection.execute(sa.select(audit_records).order_by(audit_records.c.id)).all()


def table_snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {
            table.name: sorted(
                (tuple(str(value) for value in row) for row in connection.execute(
                    sa.select(table))),
            )
            for table in (model_registry, audit_records)
        }


def sync_status(engine: sa.Engine) -> store.SyncStatus:
    with engine.connect() as connection:
        return store.read_status(connection)


def test_activation_commit_then_revert(
    models_repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine
) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True, effective_from="2025-01-15")
    models_repo.write_spec("q2q-claude-v2", effective_from="2025-06-01")
    first = models_repo.commit("Add the claude models")
    reconciler: Reconciler = make_reconciler()
    reconciler.reconcile()
    assert active_ids(engine) == {"q2q-claude-v1"}

    models_repo.write_spec("q2q-claude-v1", active=False, effective_from="2025-01-15")
    models_repo.write_spec("q2q-claude-v2", active=True, effective_from="2025-06-01")
    second = models_repo.commit("Activate q2q-claude-v2")
    result = reconciler.reconcile()

    assert active_ids(engine) == {"q2q-claude-v2"}
    assert [(c.kind, c.model_id) for c in result.plan.changes] == [
        (ChangeKind.DEACTIVATE, "q2q-claude-v1"),
        (ChangeKind.UPDATE, "q2q-claude-v1"),
        (ChangeKind.UPDATE, "q2q-claude-v2"),
        (ChangeKind.ACTIVATE, "q2q-claude-v2"),
    ]
    revisions = {row.revision for row in audit_rows(engine)}
    assert revisions == {first, second}
    subjects = {row.commit_subject for row in audit_rows(engine) if row.revision == second}
    assert subjects == {"Activate q2q-claude-v2"}
    authors = {row.commit_author for row in audit_rows(engine)}
    assert authors == {"Ada Author <ada@example.org>"}

    reverted = models_repo.revert_head()
    reconciler.reconcile()
    assert active_ids(engine) == {"q2q-claude-v1"}
    assert sync_status(engine).last_applied_revision == reverted


def test_invalid_commit_applies_nothing(
    models_repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine
) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.write_spec("q2q-openai-v1", provider="openai", model="gpt-4o", active=True)
    good = models_repo.commit("Add two models")
    reconciler = make_reconciler()
    reconciler.reconcile()
    before = table_snapshot(engine)

    models_repo.write_spec("q2q-claude-v1", active=False, description="now inactive")
    models_repo.write("models/q2q-openai-v1.yaml", "id: q2q-openai-v1\nprovider: [\n")
    bad = models_repo.commit("Break the openai spec")
    with pytest.raises(PassFailedError) as failure:
        reconciler.reconcile()

    assert isinstance(failure.value.cause, InvalidSpecsError)
    problem = failure.value.result.problems[0]
    assert problem.path == "models/q2q-openai-v1.yaml"
    assert problem.line == 3
    assert table_snapshot(engine) == before
    status = sync_status(engine)
    assert status.last_applied_revision == good
    assert status.last_attempted_revision == bad
    assert status.last_status == "failed"
    assert "models/q2q-openai-v1.yaml:3" in (status.last_error or "")
    with engine.connect() as connection:
        statuses = connection.execute(
            sa.select(reconcile_runs.c.status).order_by(reconcile_runs.c.started_at)
        ).scalars().all()
    assert statuses == ["applied", "failed"]


def test_second_pass_writes_nothing(
    models_repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine
) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.commit("Add a model")
    reconciler = make_reconciler()
    reconciler.reconcile()
    audit_count = len(audit_rows(engine))
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda *args: statements.append(args[2]))

    result = reconciler.reconcile()

    assert result.status == "unchanged"
    assert len(audit_rows(engine)) == audit_count
    writes = [s for s in statements if s.lstrip().upper().startswith(("INSERT", "UPDATE",
                                                                       "DELETE"))]
    assert writes == []


@pytest.mark.parametrize(
    "spelling",
    [pytest.param("0.8", id="plain"), pytest.param(".80", id="leading-dot"),
     pytest.param("8e-1", id="exponent"), pytest.param("0.800", id="trailing-zeros")],
)
def test_number_spellings_plan_nothing(
    models_repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine, spelling: str
) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.commit("Add a model")
    reconciler = make_reconciler()
    reconciler.reconcile()
    audit_count = len(audit_rows(engine))

    models_repo.write_spec(
        "q2q-claude-v1", active=True,
        thresholds={"confidence_increase": spelling, "belonging_decrease": spelling},
    )
    models_repo.commit("Respell the thresholds")

    assert not reconciler.plan().plan
    reconciler.reconcile()
    assert len(audit_rows(engine)) == audit_count


def test_date_equals_midnight_datetime(
    models_repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine
) -> None:
    models_repo.write_spec("q2q-claude-v1", effective_from="2025-01-15")
    models_repo.commit("Add a model")
    reconciler = make_reconciler()
    reconciler.reconcile()

    models_repo.write_spec("q2q-claude-v1", effective_from='"2025-01-15T01:00:00+01:00"')
    models_repo.commit("Write the date with an offset")

    assert not reconciler.plan().plan


def test_delete_all_refused_by_guard(
    models_repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine
) -> None:
    for name in ("a", "b", "c"):
        models_repo.write_spec(f"q2q-claude-{name}")
    models_repo.commit("Add three models")
    reconciler = make_reconciler()
    reconciler.reconcile()
    before = table_snapshot(engine)
    for name in ("a", "b", "c"):
        models_repo.remove(f"models/q2q-claude-{name}.yaml")
    models_repo.commit("Remove every model")

    with pytest.raises(PassFailedError) as failure:
        reconciler.reconcile()

    assert isinstance(failure.value.cause, MassRetireRefusedError)
    assert "would retire 3 of 3 models (100%), which is every model" in str(failure.value)
    assert table_snapshot(engine) == before
    assert sync_status(engine).last_status == "refused"


def test_delete_all_with_override(
    models_repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine
) -> None:
    for name in ("a", "b", "c"):
        models_repo.write_spec(f"q2q-claude-{name}", active=name == "a")
    models_repo.commit("Add three models")
    make_reconciler().reconcile()
    for name in ("a", "b", "c"):
        models_repo.remove(f"models/q2q-claude-{name}.yaml")
    models_repo.commit("Remove every model")

    result = make_reconciler(allow_mass_retire=True).reconcile()

    rows = models_by_id(engine)
    assert len(rows) == 3
    assert all(row.retired_at is not None for row in rows.values())
    assert not any(row.active for row in rows.values())
    retire_records = [r for r in audit_rows(engine) if r.change == "retire"]
    assert len(retire_records) == 3
    assert {r.reconcile_run_id for r in retire_records} == {result.run_id}


def test_guard_share_from_registry_yaml(
    models_repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine
) -> None:
    for name in ("a", "b", "c", "d"):
        models_repo.write_spec(f"q2q-claude-{name}")
    models_repo.commit("Add four models")
    reconciler = make_reconciler()
    reconciler.reconcile()
    for name in ("a", "b", "c"):
        models_repo.remove(f"models/q2q-claude-{name}.yaml")
    models_repo.commit("Remove three of four")

    with pytest.raises(PassFailedError, match="more than 50% of the models"):
        reconciler.reconcile()

    models_repo.write("registry.yaml", "reconciler:\n  max_retire_share: 0.8\n")
    models_repo.commit("Allow retiring up to 80%")
    reconciler.reconcile()
    assert sum(row.retired_at is not None for row in models_by_id(engine).values()) == 3


def test_retire_then_restore_same_record(
    models_repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine
) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.write_spec("q2q-claude-v2")
    models_repo.commit("Add two models")
    reconciler = make_reconciler()
    reconciler.reconcile()
    original_id = models_by_id(engine)["q2q-claude-v1"].id

    models_repo.remove("models/q2q-claude-v1.yaml")
    models_repo.commit("Remove v1")
    reconciler.reconcile()
    retired = models_by_id(engine)["q2q-claude-v1"]
    assert retired.retired_at is not None
    assert not retired.active

    models_repo.revert_head()
    reconciler.reconcile()
    restored = models_by_id(engine)["q2q-claude-v1"]
    assert restored.id == original_id
    assert restored.retired_at is None
    assert restored.active
    changes = [r.change for r in audit_rows(engine) if r.model_id == "q2q-claude-v1"]
    assert changes == ["create", "activate", "retire", "restore", "activate"]


def test_identity_change_rejected(
    models_repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine
) -> None:
    models_repo.write_spec("q2q-claude-v1")
    models_repo.commit("Add a model")
    reconciler = make_reconciler()
    reconciler.reconcile()

    models_repo.write_spec("q2q-claude-v1", thresholds={"risk_min_cues": "2"})
    models_repo.commit("Change a threshold in place")
    with pytest.raises(PassFailedError) as failure:
        reconciler.reconcile()

    message = failure.value.result.problems[0].message
    assert "identity cannot change (thresholds: risk_min_cues 1 -> 2)" in message
    assert "add the new configuration under a new id" in message
    assert models_by_id(engine)["q2q-claude-v1"].thresholds["risk_min_cues"] == 1


def test_retired_id_reused_rejected(
    models_repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine
) -> None:
    models_repo.write_spec("q2q-claude-v1")
    models_repo.write_spec("q2q-claude-v2")
    models_repo.commit("Add two models")
    reconciler = make_reconciler()
    reconciler.reconcile()
    models_repo.remove("models/q2q-claude-v1.yaml")
    models_repo.commit("Retire v1")
    reconciler.reconcile()

    models_repo.write_spec("q2q-claude-v1", model="claude-3-opus-20240229")
    models_repo.commit("Reuse the v1 id")
    with pytest.raises(PassFailedError, match="is a recorded retired model"):
        reconciler.reconcile()


def test_fault_mid_apply_rolls_back(
    models_repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.commit("Add v1")
    reconciler = make_reconciler()
    reconciler.reconcile()
    before = table_snapshot(engine)
    status_before = sync_status(engine)

    models_repo.write_spec("q2q-claude-v1", active=False)
    models_repo.write_spec("q2q-claude-v2", active=True)
    models_repo.write_spec("q2q-claude-v3")
    models_repo.commit("Switch to v2 and add v3")
    calls = {"count": 0}
    real_audit = store._audit

    def failing_audit(*args: Any, **kwargs: Any) -> None:
        calls["count"] += 1
        if calls["count"] == 3:
            raise RuntimeError("injected fault")
        real_audit(*args, **kwargs)

    monkeypatch.setattr(store, "_audit", failing_audit)
    with pytest.raises(PassFailedError, match="injected fault"):
        reconciler.reconcile()

    assert calls["count"] == 3
    assert table_snapshot(engine) == before
    status_after = sync_status(engine)
    assert status_after.last_applied_revision == status_before.last_applied_revision
    assert status_after.last_status == "failed"


def test_scheduled_cutover_switches_at_instant(
    models_repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine, clock: Clock
) -> None:
    models_repo.write_spec("q2q-claude-v2", active=True, effective_from="2025-06-01")
    models_repo.write_spec("q2q-claude-v3", active=True,
                           effective_from='"2026-02-01T09:30:00Z"')
    models_repo.commit("Schedule v3")
    reconciler = make_reconciler()

    clock.now = dt.datetime(2026, 2, 1, 9, 29, 59, tzinfo=dt.UTC)
    first = reconciler.reconcile()
    assert active_ids(engine) == {"q2q-claude-v2"}
    assert first.next_cutover_at == dt.datetime(2026, 2, 1, 9, 30, tzinfo=dt.UTC)

    clock.now = dt.datetime(2026, 2, 1, 9, 30, tzinfo=dt.UTC)
    second = reconciler.reconcile()
    assert active_ids(engine) == {"q2q-claude-v3"}
    kinds = [(c.kind, c.model_id) for c in second.plan.changes]
    assert kinds == [(ChangeKind.DEACTIVATE, "q2q-claude-v2"),
                     (ChangeKind.ACTIVATE, "q2q-claude-v3")]
    records = [r for r in audit_rows(engine) if r.reconcile_run_id == second.run_id]
    assert len(records) == 2
    assert records[1].reason == "effective_from 2026-02-01T09:30:00+00:00 reached"


def test_same_instant_active_rejected(
    models_repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine
) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True, effective_from="2025-06-01")
    models_repo.write_spec("q2q-claude-v2", active=True, effective_from='"2025-06-01T00:00:00Z"')
    models_repo.commit("Two active at once")

    with pytest.raises(PassFailedError) as failure:
        make_reconciler().reconcile()

    message = failure.value.result.problems[0].message
    assert "'q2q-claude-v1' (models/q2q-claude-v1.yaml:1)" in message
    assert "'q2q-claude-v2' (models/q2q-claude-v2.yaml:1)" in message
    assert models_by_id(engine) == {}


def test_uncommitted_edits_ignored(
    models_repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine
) -> None:
    models_repo.write_spec("q2q-claude-v1", description="committed")
    models_repo.commit("Add a model")
    models_repo.write_spec("q2q-claude-v1", description="uncommitted")
    models_repo.write_spec("q2q-claude-extra")

    make_reconciler().reconcile()

    rows = models_by_id(engine)
    assert set(rows) == {"q2q-claude-v1"}
    assert rows["q2q-claude-v1"].description == "committed"


def test_guide_models_file_applies(
    models_repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine
) -> None:
    items = [spec_yaml("q2q-claude-v1", active=True), spec_yaml("q2q-openai-v1",
             provider="openai", model="gpt-4o", active=True)]
    body = "models:\n" + "".join(
        "  - " + "\n    ".join(item.rstrip("\n").splitlines()) + "\n" for item in items
    )
    models_repo.write("models/models.yaml", body)
    models_repo.commit("Add a models file")

    make_reconciler().reconcile()

    rows = models_by_id(engine)
    assert set(rows) == {"q2q-claude-v1", "q2q-openai-v1"}
    assert rows["q2q-openai-v1"].source_path == "models/models.yaml"


def test_unmanaged_row_never_touched(
    models_repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine
) -> None:
    import uuid

    with engine.begin() as connection:
        connection.execute(sa.insert(model_registry).values(
            id=uuid.uuid4(), model_id="hand-made", provider="gemini", model_name="g",
            prompt_version="v1.0", thresholds={}, effective_from=dt.datetime(2025, 1, 1,
            tzinfo=dt.UTC), active=True,
        ))
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.commit("Add a model")

    make_reconciler().reconcile()

    rows = models_by_id(engine)
    assert rows["hand-made"].active
    assert rows["hand-made"].retired_at is None
