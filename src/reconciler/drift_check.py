"""Run drift checks: policies from git, counts from SQL, metrics from numpy, rows into drift_checks.

`DriftChecker.run(policy_id=None)` reads `policies/drift.yaml` at the last
applied revision of the models repository, and for each policy (or the one
asked for) counts the predictions of its models in the current window and the
baseline window with one GROUP BY query, computes PSI and JS divergence for
every (model, label, language) group at once, stores one drift check per group
in one transaction and then runs the policy's alert actions. The daemon's
drift scheduler, `q2q drift check` and the tests call it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa

from policies.drift_metrics import GroupMetrics, compare
from policies.drift_policy import (
    POLICY_FILE,
    DriftPolicy,
    Histogram,
    baseline_shares,
    find_policy,
    parse_policies,
)
from reconciler.drift_actions import ActionRunner, AlertGroup
from reconciler.drift_dataset import dataset_shares
from reconciler.git_source import GitSource
from registry_state import drift_store, store
from registry_state.drift_store import CheckRecord, CountRequest, GroupCounts, GroupKey, Window
from registry_state.errors import Q2QError

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


class DriftCheckError(Q2QError):
    """A drift check cannot run: no applied revision, no models, or an invalid window."""


@dataclass
class PolicyRun:
    """The checks of one policy at one instant, and the actions its alerts took."""

    policy_id: str
    run_id: uuid.UUID
    revision: str
    window: Window
    records: list[CheckRecord]
    actions: dict[str, dict[str, object]] = field(default_factory=dict)
    duration_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def alerts(self) -> list[CheckRecord]:
        return [record for record in self.records if record.alert_triggered]

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for record in self.records:
            result[record.status] = result.get(record.status, 0) + 1
        return dict(sorted(result.items()))


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DriftChecker:
    """Check the drift policies of one models repository against one database."""

    def __init__(
        self,
        engine: sa.Engine,
        source: GitSource,
        *,
        spec_dir: str = "models",
        clock: Clock = _utc_now,
        actions: ActionRunner | None = None,
    ) -> None:
        self.engine = engine
        self.source = source
        self.spec_dir = spec_dir
        self.clock = clock
        self.actions = actions or ActionRunner(source, spec_dir=spec_dir, clock=clock)

    def applied_revision(self) -> str:
        with self.engine.connect() as connection:
            status = store.read_status(connection)
        if status.last_applied_revision is None:
            raise DriftCheckError(
                "no revision of the models repository has been applied to this database, so "
                "there are no drift policies to check; run 'q2q apply' first"
            )
        return status.last_applied_revision

    def policies(self, revision: str) -> list[DriftPolicy]:
        """Return the policies declared at `revision`; none when the file is absent."""
        return parse_policies(self.source.read_file(revision, POLICY_FILE), path=POLICY_FILE)

    def run(self, *, policy_id: str | None = None, revision: str | None = None) -> list[PolicyRun]:
        """Check one policy, or every policy, at the last applied revision."""
        revision = revision or self.applied_revision()
        policies = self.policies(revision)
        if policy_id is not None:
            policies = [find_policy(policies, policy_id, path=POLICY_FILE)]
        elif not policies:
            logger.info("No drift policies in %s at revision %s", POLICY_FILE, revision[:12])
        return [self.run_policy(policy, revision=revision) for policy in policies]

    def run_policy(self, policy: DriftPolicy, *, revision: str) -> PolicyRun:
        """Count, compare, store and act for one policy."""
        started = time.perf_counter()
        now = self.clock()
        run_id = uuid.uuid4()
        window = Window(start=now - policy.window, end=now)
        log = logging.LoggerAdapter(logger, {"policy_id": policy.id, "run_id": str(run_id)})

        # Count the current window, and the baseline window if there is one, in SQL.
        with self.engine.connect() as connection:
            model_ids = policy.models or drift_store.active_model_ids(connection)
            if not model_ids:
                raise DriftCheckError(
                    f"drift policy '{policy.id}' names no models and no model is active; "
                    f"list models under 'models:' in {POLICY_FILE} or activate one"
                )
            request = self._count_request(policy, model_ids, window)
            try:
                counts = drift_store.count_predictions(
                    connection, request, extra_keys=_declared_keys(policy, model_ids)
                )
            except drift_store.WindowOverlapError as error:
                raise DriftCheckError(f"drift policy '{policy.id}': {error}") from None
        counted = time.perf_counter()

        # Compare every group at once.
        baseline, baseline_sizes = self._baseline(policy, counts, revision)
        metrics = compare(
            baseline, counts.current, min_sample_size=policy.min_sample_size,
            baseline_sizes=baseline_sizes, psi_bands=policy.thresholds.psi.bands(),
            js_bands=policy.thresholds.js.bands(),
        )
        compared = time.perf_counter()

        # Store one check per group in one transaction.
        records = _records(policy, counts, metrics, run_id=run_id, now=now, window=window,
                           revision=revision, baseline_sizes=baseline_sizes)
        with self.engine.begin() as connection:
            drift_store.record_checks(connection, records)
        stored = time.perf_counter()

        run = PolicyRun(policy.id, run_id, revision, window, records)
        run.timings = {"aggregate_s": counted - started, "metrics_s": compared - counted,
                       "store_s": stored - compared}
        log.info("Drift policy %s checked %d groups of %d models in %.3fs: %s", policy.id,
                 len(records), len(model_ids), stored - started,
                 ", ".join(f"{n} {status}" for status, n in run.counts().items()) or "no data")

        # Act on alerts, one model at a time, and record what was done.
        for model_id, group in itertools.groupby(run.alerts, key=lambda r: r.model_id):
            alerts = list(group)
            outcome = self.actions.run(policy, AlertGroup(model_id, revision, alerts))
            run.actions[model_id] = outcome.as_json()
            with self.engine.begin() as connection:
                drift_store.update_actions(
                    connection, [record.id for record in alerts], actions=outcome.as_json(),
                    rollback_branch=outcome.rollback_branch,
                )
        run.duration_s = time.perf_counter() - started
        return run

    @staticmethod
    def _count_request(
        policy: DriftPolicy, model_ids: Sequence[str], window: Window
    ) -> CountRequest:
        baseline_window = policy.baseline.window
        return CountRequest(
            model_ids=list(model_ids),
            current=window,
            baseline=Window(baseline_window.start, baseline_window.end)
            if baseline_window else None,
            bins=policy.distribution.bins if isinstance(policy.distribution, Histogram) else None,
            labels=policy.labels,
            languages=policy.languages,
        )

    def _baseline(
        self, policy: DriftPolicy, counts: GroupCounts, revision: str
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Return baseline counts or shares per group, and the measured sizes if any."""
        source = policy.baseline
        if source.window is not None:
            return counts.baseline, counts.baseline.sum(axis=1)
        bins = counts.current.shape[1]
        shares = np.zeros((len(counts.keys), bins), dtype=np.float64)
        if source.distribution is not None:
            shares[:] = baseline_shares(source.distribution)
        elif source.by_label is not None:
            for row, (_model, label, _language) in enumerate(counts.keys):
                if label in source.by_label:
                    shares[row] = baseline_shares(source.by_label[label])
        else:
            assert source.evaluation_dataset is not None
            by_group = dataset_shares(self.source, revision, source.evaluation_dataset)
            for row, (_model, label, language) in enumerate(counts.keys):
                if (label, language) in by_group:
                    shares[row] = by_group[(label, language)]
        return shares, None


def _declared_keys(policy: DriftPolicy, model_ids: Sequence[str]) -> list[GroupKey]:
    """Return the groups a policy names, so that one without data still gets a check."""
    labels = policy.labels or (list(policy.baseline.by_label) if policy.baseline.by_label
                               else None)
    if labels is None or policy.languages is None:
        return []
    return [(model_id, label, language) for model_id in model_ids for label in labels
            for language in policy.languages]


def _records(
    policy: DriftPolicy,
    counts: GroupCounts,
    metrics: GroupMetrics,
    *,
    run_id: uuid.UUID,
    now: dt.datetime,
    window: Window,
    revision: str,
    baseline_sizes: np.ndarray | None,
) -> list[CheckRecord]:
    names = policy.distribution.bin_names
    records = []
    for row, (model_id, label, language) in enumerate(counts.keys):
        has_baseline = bool(metrics.baseline_shares[row].sum() > 0)
        has_current = bool(metrics.sample_size[row] > 0)
        psi, js = metrics.psi[row], metrics.js[row]
        records.append(CheckRecord(
            id=uuid.uuid4(),
            run_id=run_id,
            check_date=now,
            model_id=model_id,
            policy_id=policy.id,
            label=label,
            language=language,
            window=window,
            psi=None if np.isnan(psi) else float(psi),
            js=None if np.isnan(js) else float(js),
            status=metrics.status[row].value,
            psi_status=_value(metrics.psi_status[row]),
            js_status=_value(metrics.js_status[row]),
            baseline_distribution=_named(names, metrics.baseline_shares[row])
            if has_baseline else None,
            current_distribution=_named(names, metrics.current_shares[row])
            if has_current else None,
            sample_size=int(metrics.sample_size[row]),
            baseline_size=int(baseline_sizes[row]) if baseline_sizes is not None else None,
            revision=revision,
        ))
    return records


def _named(names: Sequence[str], shares: np.ndarray) -> dict[str, float]:
    return {name: round(float(share), 10) for name, share in zip(names, shares, strict=True)}


def _value(status: object) -> str | None:
    return None if status is None else str(status)
