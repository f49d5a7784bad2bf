"""Prometheus metrics of the reconciler, served on /metrics.

Each `Metrics` object owns its own registry, so tests and several apps in one
process do not share counters. The daemon calls `observe_pass` after every
pass; `/metrics` calls `refresh_active_models` before rendering.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from reconciler.reconcile import PassResult


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.passes = Counter(
            "q2q_reconcile_passes_total", "Reconcile passes by result.", ["result"],
            registry=self.registry,
        )
        self.pass_duration = Histogram(
            "q2q_reconcile_pass_duration_seconds", "Duration of reconcile passes.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.last_applied = Gauge(
            "q2q_last_applied_revision_timestamp_seconds",
            "Unix time at which the last revision was applied.",
            registry=self.registry,
        )
        self.active_models = Gauge(
            "q2q_active_models", "Models in effect now, by provider.", ["provider"],
            registry=self.registry,
        )
        self.changes = Counter(
            "q2q_changes_applied_total", "Changes applied, by kind.", ["kind"],
            registry=self.registry,
        )
        self.git_errors = Counter(
            "q2q_git_errors_total", "Failures to read or fetch the models repository.",
            registry=self.registry,
        )
        self.database_errors = Counter(
            "q2q_database_errors_total", "Failures to reach or write the database.",
            registry=self.registry,
        )
        self.is_leader = Gauge(
            "q2q_leader", "1 while this replica holds the reconcile leadership.",
            registry=self.registry,
        )

    def observe_pass(self, result: PassResult) -> None:
        self.passes.labels(result=result.status).inc()
        self.pass_duration.observe(result.duration_s)
        for change in result.plan.changes if result.status == "applied" else ():
            self.changes.labels(kind=change.audit_kind).inc()
        if result.status == "applied":
            self.last_applied.set_to_current_time()

    def set_active_models(self, counts: dict[str, int]) -> None:
        for provider, count in counts.items():
            self.active_models.labels(provider=provider).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
