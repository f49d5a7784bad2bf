"""create registry tables

Revision ID: 0001
Revises:
Create Date: 2026-12-04 20:07:20.254446
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from registry_state.tables import UTCDateTime

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_registry",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.String(length=100), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("prompt_version", sa.String(length=20), nullable=False),
        sa.Column("thresholds", JSON, nullable=False),
        sa.Column("effective_from", UTCDateTime(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", UTCDateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("declared_active", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.Column("config_hash", sa.String(length=64), nullable=True),
        sa.Column("source_path", sa.String(length=500), nullable=True),
        sa.Column("revision", sa.String(length=64), nullable=True),
        sa.Column("managed_by", sa.String(length=50), nullable=True),
        sa.CheckConstraint(
            "NOT (active AND retired_at IS NOT NULL)",
            name=op.f("ck_model_registry_retired_not_active"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_registry")),
        sa.UniqueConstraint("model_id", name=op.f("uq_model_registry_model_id")),
    )
    with op.batch_alter_table("model_registry", schema=None) as batch_op:
        batch_op.create_index(
            "uq_model_registry_one_active_per_provider",
            ["provider"],
            unique=True,
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )

    op.create_table(
        "reconcile_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("revision", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("trigger", sa.String(length=50), nullable=False),
        sa.Column("instance", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=1000), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("changes_planned", sa.Integer(), server_default="0", nullable=False),
        sa.Column("changes_applied", sa.Integer(), server_default="0", nullable=False),
        sa.Column("change_counts", JSON, nullable=False),
        sa.Column("errors", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconcile_runs")),
    )
    with op.batch_alter_table("reconcile_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reconcile_runs_started_at"), ["started_at"], unique=False
        )

    op.create_table(
        "reconciler_status",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("source", sa.String(length=1000), nullable=True),
        sa.Column("last_applied_revision", sa.String(length=64), nullable=True),
        sa.Column("last_applied_at", UTCDateTime(), nullable=True),
        sa.Column("last_attempted_revision", sa.String(length=64), nullable=True),
        sa.Column("last_attempted_at", UTCDateTime(), nullable=True),
        sa.Column("last_status", sa.String(length=20), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_run_id", sa.Uuid(), nullable=True),
        sa.Column("next_cutover_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_reconciler_status")),
    )
    op.create_table(
        "audit_records",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("reconcile_run_id", sa.Uuid(), nullable=True),
        sa.Column("model_id", sa.String(length=100), nullable=False),
        sa.Column("change", sa.String(length=20), nullable=False),
        sa.Column("before", JSON, nullable=True),
        sa.Column("after", JSON, nullable=True),
        sa.Column("revision", sa.String(length=64), nullable=True),
        sa.Column("commit_author", sa.String(length=300), nullable=True),
        sa.Column("commit_subject", sa.Text(), nullable=True),
        sa.Column("instance", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["reconcile_run_id"],
            ["reconcile_runs.id"],
            name=op.f("fk_audit_records_reconcile_run_id_reconcile_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_records")),
    )
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_records_model_id_id"), ["model_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_records_model_id_id"))

    op.drop_table("audit_records")
    op.drop_table("reconciler_status")
    with op.batch_alter_table("reconcile_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconcile_runs_started_at"))

    op.drop_table("reconcile_runs")
    with op.batch_alter_table("model_registry", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_model_registry_one_active_per_provider",
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )

    op.drop_table("model_registry")
