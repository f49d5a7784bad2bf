"""Read observed state and write plans, runs and status, with an audit record per change.

Every function takes a SQLAlchemy `Connection` inside a transaction that the
caller (the reconcile pass) opens, so a whole pass commits or rolls back as one.
`apply_plan` is the only writer of `model_registry`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from registry_state.changes import Change, ChangeKind, ModelRecord, Plan
from registry_state.tables import audit_records, model_registry, reconcile_runs, reconciler_status

MANAGER = "q2q-registry"
STATUS_ROW = "default"
RECONCILE_LOCK_KEY = 0x51325152  # "Q2QR": the advisory lock key that reconcile passes share


@dataclass(frozen=True)
class CommitInfo:
    """The commit a pass applies: its sha, author and subject go into every audit record."""

    revision: str
    author: str
    subject: str


@dataclass(frozen=True)
class ApplyContext:
    commit: CommitInfo
    run_id: uuid.UUID
    instance: str
    now: dt.datetime


@dataclass(frozen=True)
class SyncStatus:
    """The reconciler's record of what it applied and attempted last."""

    source: str | None = None
    last_applied_revision: str | None = None
    last_applied_at: dt.datetime | None = None
    last_attempted_revision: str | None = None
    last_attempted_at: dt.datetime | None = None
    last_status: str | None = None
    last_error: str | None = None
    last_run_id: uuid.UUID | None = None
    next_cutover_at: dt.datetime | None = None


@dataclass
class RunRecord:
    """One reconcile pass as stored in reconcile_runs."""

    id: uuid.UUID
    revision: str | None
    status: str
    trigger: str
    instance: str
    source: str
    started_at: dt.datetime
    finished_at: dt.datetime
    changes_planned: int = 0
    changes_applied: int = 0
    change_counts: Mapping[str, int] = field(default_factory=dict)
    errors: Sequence[Mapping[str, Any]] = ()


def _record_from_row(row: sa.Row[Any]) -> ModelRecord:
    return ModelRecord(
        model_id=row.model_id,
        provider=row.provider,
        model_name=row.model_name,
        prompt_version=row.prompt_version,
        thresholds=dict(row.thresholds),
        effective_from=row.effective_from,
        declared_active=row.declared_active,
        description=row.description,
        config_hash=row.config_hash or "",
        source_path=row.source_path,
        active=row.active,
        retired=bool(row.retired),
        managed=bool(row.managed),
    )


_OBSERVED_COLUMNS = (
    *(getattr(model_registry.c, name) for name in (
        "model_id", "provider", "model_name", "prompt_version", "thresholds", "effective_from",
        "declared_active", "description", "config_hash", "source_path", "active",
    )),
    model_registry.c.retired_at.is_not(None).label("retired"),
    sa.func.coalesce(model_registry.c.managed_by == MANAGER, sa.false()).label("managed"),
)


def read_observed(connection: sa.Connection) -> list[ModelRecord]:
    """Return every model row, retired ones included, in one statement.

    Only the compared columns are read, which keeps a pass over many models cheap.
    """
    rows = connection.execute(sa.select(*_OBSERVED_COLUMNS).order_by(model_registry.c.model_id))
    return [_record_from_row(row) for row in rows]


def read_status(connection: sa.Connection, *, lock: bool = False) -> SyncStatus:
    """Return the sync status; with `lock`, hold the row until the transaction ends."""
    query = sa.select(reconciler_status).where(reconciler_status.c.name == STATUS_ROW)
    if lock and connection.dialect.name == "postgresql":
        query = query.with_for_update()
    row = connection.execute(query).first()
    if row is None:
        return SyncStatus()
    return SyncStatus(
        source=row.source,
        last_applied_revision=row.last_applied_revision,
        last_applied_at=row.last_applied_at,
        last_attempted_revision=row.last_attempted_revision,
        last_attempted_at=row.last_attempted_at,
        last_status=row.last_status,
        last_error=row.last_error,
        last_run_id=row.last_run_id,
        next_cutover_at=row.next_cutover_at,
    )


def write_status(connection: sa.Connection, **values: Any) -> None:
    """Insert or update the status row with the given columns."""
    exists = connection.execute(
        sa.select(reconciler_status.c.name).where(reconciler_status.c.name == STATUS_ROW)
    ).first()
    if exists is None:
        connection.execute(sa.insert(reconciler_status).values(name=STATUS_ROW, **values))
    else:
        connection.execute(
            sa.update(reconciler_status)
            .where(reconciler_status.c.name == STATUS_ROW)
            .values(**values)
        )


def lock_status(connection: sa.Connection) -> None:
    """Serialise reconcile passes until the transaction ends.

    On PostgreSQL this takes a transaction-level advisory lock, which writes
    nothing; on SQLite the transaction already holds the database write lock
    (BEGIN IMMEDIATE).
    """
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": RECONCILE_LOCK_KEY}
        )


def record_run(connection: sa.Connection, run: RunRecord) -> None:
    duration_ms = (run.finished_at - run.started_at).total_seconds() * 1000
    connection.execute(
        sa.insert(reconcile_runs).values(
            id=run.id,
            revision=run.revision,
            status=run.status,
            trigger=run.trigger,
            instance=run.instance,
            source=run.source,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_ms=duration_ms,
            changes_planned=run.changes_planned,
            changes_applied=run.changes_applied,
            change_counts=dict(run.change_counts),
            errors=list(run.errors),
        )
    )


def finish_run(
    connection: sa.Connection, run_id: uuid.UUID, *, finished: dt.datetime, applied: int
) -> None:
    started = connection.execute(
        sa.select(reconcile_runs.c.started_at).where(reconcile_runs.c.id == run_id)
    ).scalar_one()
    connection.execute(
        sa.update(reconcile_runs)
        .where(reconcile_runs.c.id == run_id)
        .values(
            finished_at=finished,
            duration_ms=(finished - started).total_seconds() * 1000,
            changes_applied=applied,
        )
    )


def apply_plan(
    connection: sa.Connection,
    plan: Plan,
    *,
    desired: Mapping[str, ModelRecord],
    context: ApplyContext,
) -> int:
    """Execute each change of `plan` in order, writing one audit record per change."""
    for change in plan.changes:
        _APPLIERS[change.kind](connection, change, desired, context)
        _audit(connection, change, context)
    return len(plan)


def _audit(connection: sa.Connection, change: Change, context: ApplyContext) -> None:
    values = change.as_json()
    connection.execute(
        sa.insert(audit_records).values(
            recorded_at=context.now,
            reconcile_run_id=context.run_id,
            model_id=change.model_id,
            change=change.audit_kind,
            before=values["before"],
            after=values["after"],
            revision=context.commit.revision,
            commit_author=context.commit.author,
            commit_subject=context.commit.subject,
            instance=context.instance,
            reason=change.reason or None,
        )
    )


def record_event(
    connection: sa.Connection,
    context: ApplyContext,
    *,
    event: str,
    reason: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    """Write an audit record about the pass itself rather than one model, such as a
    rewritten branch history; its model_id is "-"."""
    connection.execute(
        sa.insert(audit_records).values(
            recorded_at=context.now,
            reconcile_run_id=context.run_id,
            model_id="-",
            change=event,
            before=dict(before) if before else None,
            after=dict(after) if after else None,
            revision=context.commit.revision,
            commit_author=context.commit.author,
            commit_subject=context.commit.subject,
            instance=context.instance,
            reason=reason,
        )
    )


def _by_id(model_id: str) -> sa.ColumnElement[bool]:
    return model_registry.c.model_id == model_id


def _update(connection: sa.Connection, model_id: str, **values: Any) -> None:
    result = connection.execute(sa.update(model_registry).where(_by_id(model_id)).values(**values))
    if result.rowcount != 1:
        raise RuntimeError(f"expected one model_registry row for {model_id!r}, "
                           f"updated {result.rowcount}")


def _apply_create(
    connection: sa.Connection, change: Change, desired: Mapping[str, ModelRecord],
    context: ApplyContext,
) -> None:
    record = desired[change.model_id]
    connection.execute(
        sa.insert(model_registry).values(
            id=uuid.uuid4(),
            model_id=record.model_id,
            provider=record.provider,
            model_name=record.model_name,
            prompt_version=record.prompt_version,
            thresholds=dict(record.thresholds),
            effective_from=record.effective_from,
            active=False,
            created_at=context.now,
            updated_at=context.now,
            description=record.description,
            declared_active=record.declared_active,
            config_hash=record.config_hash,
            source_path=record.source_path,
            revision=context.commit.revision,
            managed_by=MANAGER,
        )
    )


def _apply_update(
    connection: sa.Connection, change: Change, desired: Mapping[str, ModelRecord],
    context: ApplyContext,
) -> None:
    assert change.after is not None
    _update(
        connection, change.model_id, **dict(change.after), updated_at=context.now,
        revision=context.commit.revision,
    )


def _apply_restore(
    connection: sa.Connection, change: Change, desired: Mapping[str, ModelRecord],
    context: ApplyContext,
) -> None:
    _update(connection, change.model_id, retired_at=None, updated_at=context.now,
            revision=context.commit.revision)


def _apply_retire(
    connection: sa.Connection, change: Change, desired: Mapping[str, ModelRecord],
    context: ApplyContext,
) -> None:
    _update(connection, change.model_id, retired_at=context.now, active=False,
            updated_at=context.now, revision=context.commit.revision)


def _apply_active(
    connection: sa.Connection, change: Change, desired: Mapping[str, ModelRecord],
    context: ApplyContext,
) -> None:
    _update(connection, change.model_id, active=change.kind is ChangeKind.ACTIVATE,
            updated_at=context.now)


_APPLIERS = {
    ChangeKind.CREATE: _apply_create,
    ChangeKind.UPDATE: _apply_update,
    ChangeKind.RESTORE: _apply_restore,
    ChangeKind.RETIRE: _apply_retire,
    ChangeKind.ACTIVATE: _apply_active,
    ChangeKind.DEACTIVATE: _apply_active,
}
