"""Run each drift policy on its cron schedule, on the daemon's APScheduler.

After every successful reconcile pass the daemon calls `sync(revision)`. When
the revision differs from the one last seen, the scheduler reads
policies/drift.yaml at that revision and keeps one cron job (UTC) per policy:
new policies get a job, removed ones lose it, changed schedules are replaced.
An invalid policy file is logged and leaves the previous jobs in place. A job
runs only on the leader replica, so replicas do not store the same check
twice.

The checks read git through a `GitSource` of their own, because the daemon's
source is used by the pass thread and GitPython objects are not shared
between threads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.cron import CronTrigger

from reconciler.drift_check import DriftChecker
from reconciler.git_source import GitSource
from registry_state.errors import InvalidSpecsError, Q2QError

if TYPE_CHECKING:
    from reconciler.daemon import Daemon

logger = logging.getLogger(__name__)

JOB_PREFIX = "drift:"


class DriftScheduler:
    """One cron job per drift policy of the last applied revision."""

    def __init__(
        self,
        scheduler: Any,
        checker_factory: Callable[[], DriftChecker],
        *,
        is_leader: Callable[[], bool],
    ) -> None:
        self._scheduler = scheduler
        self._checker_factory = checker_factory
        self._checker: DriftChecker | None = None
        self._is_leader = is_leader
        self._revision: str | None = None
        self._schedules: dict[str, str] = {}

    @classmethod
    def for_daemon(cls, daemon: Daemon) -> DriftScheduler:
        reconciler = daemon.reconciler

        def checker() -> DriftChecker:
            source = GitSource(reconciler.source.location, branch=reconciler.source.branch)
            return DriftChecker(daemon.engine, source, spec_dir=reconciler.options.spec_dir)

        return cls(daemon._scheduler, checker, is_leader=lambda: daemon.state.is_leader)

    @property
    def checker(self) -> DriftChecker:
        if self._checker is None:
            self._checker = self._checker_factory()
        return self._checker

    @property
    def schedules(self) -> dict[str, str]:
        """The cron schedule of each policy that has a job."""
        return dict(self._schedules)

    def sync(self, revision: str | None) -> None:
        """Match the jobs to the policies at `revision`; a revision seen before is skipped."""
        if revision is None or revision == self._revision or not self._scheduler.running:
            return
        try:
            policies = self.checker.policies(revision)
        except InvalidSpecsError as error:
            logger.error("Drift policies at revision %s are invalid, keeping the previous "
                         "schedules: %s", revision[:12], error)
            return
        except Q2QError as error:
            logger.warning("Could not read drift policies at revision %s: %s", revision[:12],
                           error)
            return
        self._revision = revision

        wanted = {policy.id: policy.schedule for policy in policies}
        for policy_id in sorted(self._schedules.keys() - wanted.keys()):
            self._scheduler.remove_job(JOB_PREFIX + policy_id)
            logger.info("Removed the drift schedule of policy %s", policy_id)
        for policy_id, schedule in sorted(wanted.items()):
            if self._schedules.get(policy_id) == schedule:
                continue
            self._scheduler.add_job(
                self.run_policy, CronTrigger.from_crontab(schedule, timezone="UTC"),
                args=[policy_id], id=JOB_PREFIX + policy_id, replace_existing=True,
                coalesce=True, max_instances=1,
            )
            logger.info("Scheduled drift policy %s at '%s' (UTC)", policy_id, schedule)
        self._schedules = wanted

    def run_policy(self, policy_id: str) -> None:
        """Run one policy now if this replica leads; log failures and carry on."""
        if not self._is_leader():
            logger.debug("Skipped drift policy %s: this replica is a follower", policy_id)
            return
        try:
            runs = self.checker.run(policy_id=policy_id)
        except Q2QError as error:
            logger.error("Drift policy %s failed: %s", policy_id, error)
            return
        except Exception:  # a bug: log it and keep the scheduler running
            logger.exception("Drift policy %s failed unexpectedly", policy_id)
            return
        for run in runs:
            logger.info("Drift policy %s stored %d checks (%d alerts) in %.3fs", run.policy_id,
                        len(run.records), len(run.alerts), run.duration_s)
