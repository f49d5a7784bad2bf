"""Database tables of the evaluation harness, registered on `registry_state.tables.metadata`.

- `eval_datasets`: one uploaded CSV of labelled examples, with its content hash.
- `eval_rows`: the examples of a dataset, in file order, with their source line.
- `eval_runs`: one model spec run over one dataset, with the hashes that make
  its report reproducible, row counts and the metrics document.
- `eval_results`: one metrics row per (language slice, label) of a run; the
  averages are rows whose label is `macro` or `micro`.
- `provider_response_cache`: parsed provider outputs keyed by provider, model,
  rendered-prompt hash and request parameters. Errors are never stored here.

Migration 0003 creates these tables.
"""

from __future__ import annotations

import sqlalchemy as sa

from registry_state.tables import JSONColumn, UTCDateTime, metadata

eval_datasets = sa.Table(
    "eval_datasets",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("row_count", sa.Integer(), nullable=False),
    sa.Column("labels", JSONColumn, nullable=False),
    sa.Column("languages", JSONColumn, nullable=False),
    sa.Column("encoding", sa.String(40), nullable=False),
    sa.Column("size_bytes", sa.Integer(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("name", "content_hash"),
)

eval_rows = sa.Table(
    "eval_rows",
    metadata,
    sa.Column("dataset_id", sa.Uuid(), sa.ForeignKey("eval_datasets.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("position", sa.Integer(), primary_key=True),
    sa.Column("line", sa.Integer(), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("language", sa.String(35), nullable=False),
    sa.Column("labels", JSONColumn, nullable=False),
)

eval_runs = sa.Table(
    "eval_runs",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("dataset_id", sa.Uuid(), sa.ForeignKey("eval_datasets.id"), nullable=False),
    sa.Column("model_id", sa.String(100), nullable=False),
    sa.Column("provider", sa.String(50), nullable=False),
    sa.Column("model_name", sa.String(100), nullable=False),
    sa.Column("prompt_version", sa.String(20), nullable=False),
    sa.Column("thresholds", JSONColumn, nullable=False),
    sa.Column("identity_hash", sa.String(64), nullable=False),
    sa.Column("prompt_hash", sa.String(64), nullable=False),
    sa.Column("dataset_hash", sa.String(64), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("rows_total", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("rows_failed", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("provider_calls", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("cache_hits", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("metrics", JSONColumn, nullable=True),
    sa.Column("row_errors", JSONColumn, nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Index(None, "model_id", "started_at"),
)

eval_results = sa.Table(
    "eval_results",
    metadata,
    sa.Column("run_id", sa.Uuid(), sa.ForeignKey("eval_runs.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("language", sa.String(35), primary_key=True),
    sa.Column("label", sa.String(100), primary_key=True),
    sa.Column("precision", sa.Float(), nullable=True),
    sa.Column("recall", sa.Float(), nullable=True),
    sa.Column("f1", sa.Float(), nullable=True),
    sa.Column("support", sa.Integer(), nullable=False),
)

provider_response_cache = sa.Table(
    "provider_response_cache",
    metadata,
    sa.Column("cache_key", sa.String(64), primary_key=True),
    sa.Column("provider", sa.String(50), nullable=False),
    sa.Column("model_name", sa.String(100), nullable=False),
    sa.Column("prompt_hash", sa.String(64), nullable=False),
    sa.Column("parameters", JSONColumn, nullable=False),
    sa.Column("output", JSONColumn, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)
