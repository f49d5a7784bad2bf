"""Database tables of the registry, as SQLAlchemy Core metadata.

`model_registry` keeps the governance guide's columns (id, model_id, provider,
model_name, prompt_version, thresholds, effective_from, active, created_at,
updated_at) and adds what reconciliation needs. Its `active` column means "in
effect now"; a partial unique index allows one active row per provider on both
SQLite and PostgreSQL. Alembic migrations in `registry_state/migrations` create
these tables; tests compare the two.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back as an aware UTC datetime.

    SQLite has no time zone type and returns naive values, so both dialects go
    through this conversion and compare equal after a round trip.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given for a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


JSONColumn = sa.JSON().with_variant(JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

model_registry = sa.Table(
    "model_registry",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("model_id", sa.String(100), nullable=False, unique=True),
    sa.Column("provider", sa.String(50), nullable=False),
    sa.Column("model_name", sa.String(100), nullable=False),
    sa.Column("prompt_version", sa.String(20), nullable=False),
    sa.Column("thresholds", JSONColumn, nullable=False),
    sa.Column("effective_from", UTCDateTime(), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("created_at", UTCDateTime(), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", UTCDateTime(), nullable=False, server_default=sa.func.now()),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("declared_active", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("retired_at", UTCDateTime(), nullable=True),
    sa.Column("config_hash", sa.String(64), nullable=True),
    sa.Column("source_path", sa.String(500), nullable=True),
    sa.Column("revision", sa.String(64), nullable=True),
    sa.Column("managed_by", sa.String(50), nullable=True),
    sa.CheckConstraint("NOT (active AND retired_at IS NOT NULL)", name="retired_not_active"),
    sa.Index(
        "uq_model_registry_one_active_per_provider",
        "provider",
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    ),
)

reconcile_runs = sa.Table(
    "reconcile_runs",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("revision", sa.String(64), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("trigger", sa.String(50), nullable=False),
    sa.Column("instance", sa.String(200), nullable=False),
    sa.Column("source", sa.String(1000), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime(), nullable=False),
    sa.Column("duration_ms", sa.Float(), nullable=False),
    sa.Column("changes_planned", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("changes_applied", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("change_counts", JSONColumn, nullable=False),
    sa.Column("errors", JSONColumn, nullable=False),
    sa.Index(None, "started_at"),
)

audit_records = sa.Table(
    "audit_records",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.Column("reconcile_run_id", sa.Uuid(), sa.ForeignKey("reconcile_runs.id"), nullable=True),
    sa.Column("model_id", sa.String(100), nullable=False),
    sa.Column("change", sa.String(20), nullable=False),
    sa.Column("before", JSONColumn, nullable=True),
    sa.Column("after", JSONColumn, nullable=True),
    sa.Column("revision", sa.String(64), nullable=True),
    sa.Column("commit_author", sa.String(300), nullable=True),
    sa.Column("commit_subject", sa.Text(), nullable=True),
    sa.Column("instance", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Index(None, "model_id", "id"),
)

reconciler_status = sa.Table(
    "reconciler_status",
    metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("source", sa.String(1000), nullable=True),
    sa.Column("last_applied_revision", sa.String(64), nullable=True),
    sa.Column("last_applied_at", UTCDateTime(), nullable=True),
    sa.Column("last_attempted_revision", sa.String(64), nullable=True),
    sa.Column("last_attempted_at", UTCDateTime(), nullable=True),
    sa.Column("last_status", sa.String(20), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("last_run_id", sa.Uuid(), nullable=True),
    sa.Column("next_cutover_at", UTCDateTime(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=True),
)
