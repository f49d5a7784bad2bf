"""create drift tables: predictions and drift_checks

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from registry_state.tables import UTCDateTime

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("model_id", sa.String(length=100), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("label", sa.String(length=50), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("positive", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
        sa.UniqueConstraint(
            "request_id", "label", name=op.f("uq_predictions_request_id_label")
        ),
    )
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_predictions_model_id_created_at_label_language_positive_score"),
            ["model_id", "created_at", "label", "language", "positive", "score"],
            unique=False,
        )

    op.create_table(
        "drift_checks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("check_date", UTCDateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("label", sa.String(length=50), nullable=False),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("psi_score", sa.Float(), nullable=True),
        sa.Column("js_score", sa.Float(), nullable=True),
        sa.Column("alert_triggered", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("baseline_distribution", JSON, nullable=True),
        sa.Column("current_distribution", JSON, nullable=True),
        sa.Column("sample_size", sa.Numeric(precision=10, scale=0), nullable=True),
        sa.Column("created_at", UTCDateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("model_id", sa.String(length=100), nullable=False),
        sa.Column("policy_id", sa.String(length=100), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("window_end", UTCDateTime(), nullable=False),
        sa.Column("baseline_size", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("psi_status", sa.String(length=20), nullable=True),
        sa.Column("js_status", sa.String(length=20), nullable=True),
        sa.Column("revision", sa.String(length=64), nullable=True),
        sa.Column("rollback_branch", sa.String(length=200), nullable=True),
        sa.Column("actions", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_checks")),
    )
    with op.batch_alter_table("drift_checks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_drift_checks_check_date"), ["check_date"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_drift_checks_alert_triggered_check_date"),
            ["alert_triggered", "check_date"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_drift_checks_policy_id_model_id_check_date"),
            ["policy_id", "model_id", "check_date"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("drift_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drift_checks_policy_id_model_id_check_date"))
        batch_op.drop_index(batch_op.f("ix_drift_checks_alert_triggered_check_date"))
        batch_op.drop_index(batch_op.f("ix_drift_checks_check_date"))
    op.drop_table("drift_checks")

    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_predictions_model_id_created_at_label_language_positive_score")
        )
    op.drop_table("predictions")
