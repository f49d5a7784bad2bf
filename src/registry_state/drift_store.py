"""Aggregate predictions for drift checks in SQL, and store and read drift checks.

`count_predictions` runs one GROUP BY query over the predictions table, by
model, label, language, window (baseline or current) and bin, and returns the
counts as numpy arrays of shape (groups, bins). Raw prediction rows never
reach Python: the query returns at most one row per group, window and bin.
`record_checks` writes one drift_checks row per group, and `list_checks`
reads them back in the API's camelCase shape. `reconciler.drift_check`,
`q2q drift` and the HTTP API call these.

Binning: a positive-share distribution has bin 0 for `positive` true and bin
1 for false. A histogram of N bins puts a score s in bin floor(s * N), and a
score of exactly 1.0 in the last bin; rows without a score are left out.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from registry_state.tables import model_registry
from registry_state.tables_drift import drift_checks, predictions

GroupKey = tuple[str, str, str]
"""(model_id, label, language)."""


@dataclass(frozen=True)
class Window:
    """A half-open UTC interval [start, end)."""

    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class CountRequest:
    """The models, windows, filters and binning of one aggregation."""

    model_ids: Sequence[str]
    current: Window
    baseline: Window | None = None
    bins: int | None = None
    """Histogram bins over the score; None counts positive and negative decisions."""
    labels: Sequence[str] | None = None
    languages: Sequence[str] | None = None

    @property
    def bin_count(self) -> int:
        return self.bins if self.bins is not None else 2


@dataclass(frozen=True)
class GroupCounts:
    """Counts per group and bin; row i of both arrays belongs to `keys[i]`."""

    keys: list[GroupKey]
    baseline: npt.NDArray[np.int64]
    current: npt.NDArray[np.int64]


class WindowOverlapError(ValueError):
    """The baseline window reaches into the current window."""


def _bin_expression(request: CountRequest, dialect: str) -> sa.ColumnElement[Any]:
    if request.bins is None:
        return sa.case((predictions.c.positive, 0), else_=1)
    bins: sa.ColumnElement[Any] = sa.literal_column(str(int(request.bins)))
    last: sa.ColumnElement[Any] = sa.literal_column(str(int(request.bins) - 1))
    scaled = predictions.c.score * bins
    if dialect == "postgresql":
        # CAST rounds on PostgreSQL, so floor first; LEAST puts 1.0 in the last bin.
        return sa.func.least(sa.cast(sa.func.floor(scaled), sa.Integer), last)
    # SQLite's CAST truncates, which is floor for scores in [0, 1]; two-argument MIN
    # is its scalar minimum.
    return sa.func.min(sa.cast(scaled, sa.Integer), last)


def aggregation_query(request: CountRequest, dialect: str) -> sa.Select[Any]:
    """Build the GROUP BY query; the benchmark times it on its own."""
    created = predictions.c.created_at
    current, baseline = request.current, request.baseline
    conditions: list[sa.ColumnElement[bool]] = [
        predictions.c.model_id.in_(list(request.model_ids)),
        created < current.end,
    ]
    if baseline is None:
        window: sa.ColumnElement[Any] = sa.literal(1)
        conditions.append(created >= current.start)
    else:
        if baseline.end > current.start:
            raise WindowOverlapError(
                f"the baseline window ends at {baseline.end.isoformat()}, after the current "
                f"window starts at {current.start.isoformat()}; end the baseline earlier or "
                "shorten current_window"
            )
        window = sa.case((created >= current.start, 1), else_=0)
        conditions.append(created >= baseline.start)
        if baseline.end < current.start:
            conditions.append(sa.or_(created < baseline.end, created >= current.start))
    if request.bins is not None:
        conditions.append(predictions.c.score.is_not(None))
    if request.labels is not None:
        conditions.append(predictions.c.label.in_(list(request.labels)))
    if request.languages is not None:
        conditions.append(predictions.c.language.in_(list(request.languages)))

    # The expressions are grouped through a subquery: written twice with bound
    # parameters, PostgreSQL would not see SELECT and GROUP BY as the same expression.
    inner = (
        sa.select(predictions.c.model_id, predictions.c.label, predictions.c.language,
                  window.label("in_current"), _bin_expression(request, dialect).label("bin"))
        .where(*conditions)
        .subquery("windowed")
    )
    columns = (inner.c.model_id, inner.c.label, inner.c.language, inner.c.in_current,
               inner.c.bin)
    return sa.select(*columns, sa.func.count().label("n")).group_by(*columns)


def count_predictions(
    connection: sa.Connection,
    request: CountRequest,
    *,
    extra_keys: Sequence[GroupKey] = (),
) -> GroupCounts:
    """Count predictions per group, window and bin; `extra_keys` adds groups without data."""
    rows = connection.execute(aggregation_query(request, connection.dialect.name)).all()
    keys = sorted({(row[0], row[1], row[2]) for row in rows} | set(extra_keys))
    index = {key: position for position, key in enumerate(keys)}
    counts = np.zeros((2, len(keys), request.bin_count), dtype=np.int64)
    if rows:
        groups = np.fromiter((index[(row[0], row[1], row[2])] for row in rows), np.int64,
                             len(rows))
        flags = np.fromiter((int(row[3]) for row in rows), np.int64, len(rows))
        bins = np.fromiter((int(row[4]) for row in rows), np.int64, len(rows))
        values = np.fromiter((int(row[5]) for row in rows), np.int64, len(rows))
        np.add.at(counts, (flags, groups, bins), values)
    return GroupCounts(keys=keys, baseline=counts[0], current=counts[1])


def active_model_ids(connection: sa.Connection) -> list[str]:
    """Return the ids of the models in effect now, one per provider at most."""
    rows = connection.execute(
        sa.select(model_registry.c.model_id).where(model_registry.c.active.is_(True))
        .order_by(model_registry.c.model_id)
    )
    return [row[0] for row in rows]


@dataclass(frozen=True)
class CheckRecord:
    """One drift check as stored: one (model, label, language) of one policy run."""

    id: uuid.UUID
    run_id: uuid.UUID
    check_date: dt.datetime
    model_id: str
    policy_id: str
    label: str
    language: str
    window: Window
    psi: float | None
    js: float | None
    status: str
    psi_status: str | None
    js_status: str | None
    baseline_distribution: dict[str, float] | None
    current_distribution: dict[str, float] | None
    sample_size: int
    baseline_size: int | None
    revision: str | None = None
    rollback_branch: str | None = None
    actions: dict[str, Any] | None = None

    @property
    def alert_triggered(self) -> bool:
        return self.status == "alert"


def record_checks(connection: sa.Connection, records: Sequence[CheckRecord]) -> None:
    """Insert the checks of one policy run."""
    if not records:
        return
    connection.execute(sa.insert(drift_checks), [_values(record) for record in records])


def _values(record: CheckRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "check_date": record.check_date,
        "created_at": record.check_date,
        "label": record.label,
        "language": record.language,
        "psi_score": record.psi,
        "js_score": record.js,
        "alert_triggered": record.alert_triggered,
        "baseline_distribution": record.baseline_distribution,
        "current_distribution": record.current_distribution,
        "sample_size": record.sample_size,
        "model_id": record.model_id,
        "policy_id": record.policy_id,
        "run_id": record.run_id,
        "window_start": record.window.start,
        "window_end": record.window.end,
        "baseline_size": record.baseline_size,
        "status": record.status,
        "psi_status": record.psi_status,
        "js_status": record.js_status,
        "revision": record.revision,
        "rollback_branch": record.rollback_branch,
        "actions": record.actions,
    }


def update_actions(
    connection: sa.Connection,
    check_ids: Sequence[uuid.UUID],
    *,
    actions: dict[str, Any],
    rollback_branch: str | None,
) -> None:
    """Record what the alert actions did on the checks that triggered them."""
    connection.execute(
        sa.update(drift_checks).where(drift_checks.c.id.in_(list(check_ids)))
        .values(actions=actions, rollback_branch=rollback_branch)
    )


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def check_json(row: sa.Row[Any]) -> dict[str, Any]:
    """Render a drift_checks row with the guide's columns in camelCase, plus ours."""
    return {
        "id": str(row.id),
        "checkDate": _iso(row.check_date),
        "label": row.label,
        "language": row.language,
        "psiScore": row.psi_score,
        "jsScore": row.js_score,
        "alertTriggered": row.alert_triggered,
        "baselineDistribution": row.baseline_distribution,
        "currentDistribution": row.current_distribution,
        "sampleSize": int(row.sample_size) if row.sample_size is not None else None,
        "createdAt": _iso(row.created_at),
        "modelId": row.model_id,
        "policyId": row.policy_id,
        "runId": str(row.run_id),
        "windowStart": _iso(row.window_start),
        "windowEnd": _iso(row.window_end),
        "baselineSize": row.baseline_size,
        "status": row.status,
        "psiStatus": row.psi_status,
        "jsStatus": row.js_status,
        "revision": row.revision,
        "rollbackBranch": row.rollback_branch,
        "actions": row.actions,
    }


def list_checks(
    connection: sa.Connection,
    *,
    limit: int = 50,
    alerts_only: bool = False,
    policy_id: str | None = None,
    model_id: str | None = None,
    since: dt.datetime | None = None,
    newest_first: bool = True,
) -> list[dict[str, Any]]:
    """Return stored checks, newest first unless `newest_first` is False."""
    order = (drift_checks.c.check_date.desc(), drift_checks.c.id) if newest_first else \
        (drift_checks.c.check_date, drift_checks.c.id)
    query = sa.select(drift_checks).order_by(*order).limit(limit)
    if alerts_only:
        query = query.where(drift_checks.c.alert_triggered.is_(True))
    if policy_id is not None:
        query = query.where(drift_checks.c.policy_id == policy_id)
    if model_id is not None:
        query = query.where(drift_checks.c.model_id == model_id)
    if since is not None:
        query = query.where(drift_checks.c.check_date >= since)
    return [check_json(row) for row in connection.execute(query)]
