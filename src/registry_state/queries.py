"""Read-only queries behind `q2q models`, `q2q audit`, `q2q status` and the HTTP API.

Rows come back as camelCase dicts in the governance guide's shapes (`modelId`,
`modelName`, `promptVersion`, ...), so the CLI's JSON output and the API share
one rendering.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from registry_state.errors import ModelNotFoundError
from registry_state.spec import PROVIDERS
from registry_state.tables import audit_records, model_registry, reconcile_runs


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def model_json(row: sa.Row[Any]) -> dict[str, Any]:
    """Render a model_registry row in the guide's camelCase shape, plus our columns."""
    return {
        "id": str(row.id),
        "modelId": row.model_id,
        "provider": row.provider,
        "modelName": row.model_name,
        "promptVersion": row.prompt_version,
        "thresholds": dict(row.thresholds),
        "effectiveFrom": _iso(row.effective_from),
        "active": row.active,
        "declaredActive": row.declared_active,
        "description": row.description,
        "retiredAt": _iso(row.retired_at),
        "configHash": row.config_hash,
        "sourcePath": row.source_path,
        "revision": row.revision,
        "managedBy": row.managed_by,
        "createdAt": _iso(row.created_at),
        "updatedAt": _iso(row.updated_at),
    }


def list_models(connection: sa.Connection, *, include_retired: bool = True) -> list[dict[str, Any]]:
    query = sa.select(model_registry).order_by(
        model_registry.c.provider, model_registry.c.active.desc(), model_registry.c.model_id
    )
    if not include_retired:
        query = query.where(model_registry.c.retired_at.is_(None))
    return [model_json(row) for row in connection.execute(query)]


def get_model(connection: sa.Connection, model_id: str) -> dict[str, Any]:
    row = connection.execute(
        sa.select(model_registry).where(model_registry.c.model_id == model_id)
    ).first()
    if row is None:
        raise ModelNotFoundError(
            f"model '{model_id}' not found; list models with 'q2q models list'"
        )
    return model_json(row)


def active_model(connection: sa.Connection, provider: str) -> dict[str, Any]:
    if provider not in PROVIDERS:
        raise ModelNotFoundError(
            f"unknown provider '{provider}'; allowed values: {', '.join(PROVIDERS)}"
        )
    row = connection.execute(
        sa.select(model_registry).where(
            model_registry.c.provider == provider, model_registry.c.active.is_(True)
        )
    ).first()
    if row is None:
        raise ModelNotFoundError(f"no active model for provider '{provider}'")
    return model_json(row)


def audit_json(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "recordedAt": _iso(row.recorded_at),
        "modelId": row.model_id,
        "change": row.change,
        "before": row.before,
        "after": row.after,
        "revision": row.revision,
        "commitAuthor": row.commit_author,
        "commitSubject": row.commit_subject,
        "instance": row.instance,
        "reason": row.reason,
        "reconcileRunId": str(row.reconcile_run_id) if row.reconcile_run_id else None,
    }


def list_audit(
    connection: sa.Connection, *, model_id: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Return audit records, newest first."""
    query = sa.select(audit_records).order_by(audit_records.c.id.desc()).limit(limit)
    if model_id is not None:
        query = query.where(audit_records.c.model_id == model_id)
    return [audit_json(row) for row in connection.execute(query)]


def run_json(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "revision": row.revision,
        "status": row.status,
        "trigger": row.trigger,
        "instance": row.instance,
        "startedAt": _iso(row.started_at),
        "finishedAt": _iso(row.finished_at),
        "durationMs": round(row.duration_ms, 1),
        "changesPlanned": row.changes_planned,
        "changesApplied": row.changes_applied,
        "changeCounts": row.change_counts,
        "errors": row.errors,
    }


def get_run(connection: sa.Connection, run_id: uuid.UUID | None) -> dict[str, Any] | None:
    if run_id is None:
        return None
    row = connection.execute(sa.select(reconcile_runs).where(reconcile_runs.c.id == run_id)).first()
    return run_json(row) if row else None


def count_rows(connection: sa.Connection, table: sa.Table) -> int:
    return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def count_active_by_provider(connection: sa.Connection) -> dict[str, int]:
    """Return the number of models in effect per provider, zero for providers with none."""
    counts = dict.fromkeys(PROVIDERS, 0)
    rows = connection.execute(
        sa.select(model_registry.c.provider, sa.func.count())
        .where(model_registry.c.active.is_(True))
        .group_by(model_registry.c.provider)
    )
    for provider, count in rows:
        counts[provider] = int(count)
    return counts
