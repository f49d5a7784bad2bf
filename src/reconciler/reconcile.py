"""The reconcile pass: make the database match one commit of the models repository.

A pass resolves the branch to a commit, loads and validates its specs, reads
observed state, computes the plan, applies the mass-retire guard and applies
the plan with its audit records, all in one database transaction. The
reconciler is level-based: it compares whole states rather than replaying
events, so a missed pass is repaired by the next one, and a second pass over
the same revision writes nothing.

A failed pass (invalid specs, the guard, a database error) rolls back and is
then recorded in its own transaction as a failed run, with the commit as last
attempted and the previous last applied revision left in force.
`q2q apply`, `q2q plan` and the daemon call `Reconciler`.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time
import uuid
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from policies.activation import next_cutover
from policies.spec_rules import check_specs
from reconciler.desired import BlobCache, DesiredState, load_desired
from reconciler.git_source import GitSource
from reconciler.observed_checks import recorded_identities, unmanaged_conflicts
from reconciler.planner import (
    check_retire_guard,
    compute_plan,
    desired_records,
    mark_self_heal,
)
from registry_state import store
from registry_state.changes import ModelRecord, Plan
from registry_state.errors import (
    InvalidSpecsError,
    MassRetireRefusedError,
    Problem,
    Q2QError,
    Severity,
)

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def default_instance() -> str:
    return f"{socket.gethostname()}"


class PassLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefix every line of a pass with its pass id and revision."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        kwargs.setdefault("extra", {}).update(extra)
        revision = str(extra.get("revision") or "-")[:12]
        return f"[pass {extra['pass_id']} rev {revision}] {msg}", kwargs


@dataclass
class PassResult:
    """The outcome of one pass, for the CLI, the API and the daemon."""

    run_id: uuid.UUID
    status: str
    revision: str | None = None
    plan: Plan = field(default_factory=Plan)
    problems: list[Problem] = field(default_factory=list)
    duration_s: float = 0.0
    files_parsed: int = 0
    next_cutover_at: dt.datetime | None = None

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]


class PassFailedError(Q2QError):
    """A reconcile pass was recorded as failed; `result` describes what was attempted."""

    def __init__(self, cause: Exception, result: PassResult) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.result = result


@dataclass
class ReconcileOptions:
    spec_dir: str = "models"
    instance: str = field(default_factory=default_instance)
    allow_mass_retire: bool = False
    log_summary: bool = True
    """False when the caller (the daemon) logs the summary line with the next pass time."""


class Reconciler:
    """Reconcile one branch of one repository into one database."""

    def __init__(
        self,
        engine: sa.Engine,
        source: GitSource,
        *,
        options: ReconcileOptions | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.engine = engine
        self.source = source
        self.options = options or ReconcileOptions()
        self.clock = clock
        self.cache = BlobCache()
        self._reported_unmanaged: frozenset[str] = frozenset()

    def plan(self) -> PassResult:
        """Compute the plan for the branch tip without writing anything."""
        return self._pass(trigger="plan", dry_run=True)

    def reconcile(self, *, trigger: str = "manual") -> PassResult:
        """Apply the branch tip; raise `PassFailedError` after recording a failed pass."""
        return self._pass(trigger=trigger, dry_run=False)

    def _pass(self, *, trigger: str, dry_run: bool) -> PassResult:
        run_id = uuid.uuid4()
        started = self.clock()
        started_monotonic = time.perf_counter()
        log = PassLogger(logger, {"pass_id": str(run_id)[:8], "revision": None})
        result = PassResult(run_id=run_id, status="unchanged")

        try:
            # Resolve the branch to a commit.
            self.source.refresh()
            commit = self.source.resolve()
            result.revision = commit.revision
            log.extra = {"pass_id": str(run_id)[:8], "revision": commit.revision}

            # Load the commit's specs, parsing only blobs not seen before.
            desired = load_desired(
                self.source, commit, spec_dir=self.options.spec_dir, cache=self.cache
            )
            result.files_parsed = desired.files_parsed

            # Validate, plan, guard and apply in one transaction.
            # A dry run's connection closes without a commit, so it writes nothing.
            opened = self.engine.connect() if dry_run else self.engine.begin()
            with opened as connection:
                self._apply_in_transaction(
                    connection, desired, result, started=started, trigger=trigger,
                    dry_run=dry_run, log=log,
                )
        except Exception as error:
            result.duration_s = time.perf_counter() - started_monotonic
            if isinstance(error, InvalidSpecsError):
                result.problems = error.problems
            if dry_run:
                raise
            result.status = "refused" if isinstance(error, MassRetireRefusedError) else "failed"
            self._record_failure(result, error, started=started, trigger=trigger, log=log)
            raise PassFailedError(error, result) from error

        result.duration_s = time.perf_counter() - started_monotonic
        for warning in result.warnings:
            log.warning("%s", warning)
        if not dry_run and self.options.log_summary:
            log.info(
                "Pass %s in %.3fs: %s; next scheduled cutover %s",
                result.status, result.duration_s, describe_counts(result.plan),
                result.next_cutover_at.isoformat() if result.next_cutover_at else "none",
            )
        return result

    def _apply_in_transaction(
        self,
        connection: sa.Connection,
        desired: DesiredState,
        result: PassResult,
        *,
        started: dt.datetime,
        trigger: str,
        dry_run: bool,
        log: PassLogger,
    ) -> None:
        commit = desired.commit
        now = self.clock()
        if not dry_run:
            store.lock_status(connection)
        status = store.read_status(connection)
        observed = store.read_observed(connection)
        self._report_unmanaged(observed, log)

        # Validate the specs together and against the recorded identities.
        problems = desired.problems + check_specs(
            desired.specs, now=now, recorded=recorded_identities(observed, desired)
        )
        problems += unmanaged_conflicts(desired, observed, now)
        if not desired.spec_dir_exists and not any(r.managed and not r.retired for r in observed):
            problems.append(Problem(
                self.options.spec_dir,
                message=f"the spec directory '{self.options.spec_dir}' does not exist at "
                f"revision {commit.revision[:12]}; check --path",
            ))
        result.problems = sorted(problems)
        if any(p.severity is Severity.ERROR for p in problems):
            raise InvalidSpecsError(problems)

        # Plan the difference and guard against mass retirement.
        records = desired_records(desired.specs, now)
        plan = compute_plan(records, observed)
        same_source = status.source in (None, self._describe_source())
        if status.last_applied_revision == commit.revision and same_source:
            plan = mark_self_heal(plan, desired.specs, since=status.last_applied_at, now=now)
        if not desired.spec_dir_exists:
            result.problems = sorted([*result.problems, Problem(
                self.options.spec_dir,
                severity=Severity.WARNING,
                message=f"the spec directory '{self.options.spec_dir}' does not exist at "
                f"revision {commit.revision[:12]}, so every model would be retired; check "
                "--path if that is unexpected",
            )])
        result.plan = plan
        result.next_cutover_at = next_cutover((s.spec for s in desired.specs), now)
        if dry_run:
            result.status = "planned" if plan else "unchanged"
            return
        unchanged_revision = (
            status.last_applied_revision == commit.revision
            and status.last_attempted_revision == commit.revision
        )
        if not plan and unchanged_revision:
            result.status = "unchanged"
            return
        repo_settings = desired.settings.reconciler
        try:
            check_retire_guard(
                plan,
                observed,
                max_share=repo_settings.max_retire_share,
                allowed=self.options.allow_mass_retire or repo_settings.allow_mass_retire,
            )
        except MassRetireRefusedError as error:
            if desired.spec_dir_exists:
                raise
            raise MassRetireRefusedError(
                f"{error} (the spec directory '{self.options.spec_dir}' does not exist at "
                "this revision: check --path if that is unexpected)"
            ) from None

        # Record the run first: the audit records refer to it.
        run = store.RunRecord(
            id=result.run_id,
            revision=commit.revision,
            status="applied",
            trigger=trigger,
            instance=self.options.instance,
            source=self._describe_source(),
            started_at=started,
            finished_at=started,
            changes_planned=len(plan),
            change_counts=plan.counts(),
            errors=[p.as_json() for p in result.warnings],
        )
        store.record_run(connection, run)
        context = store.ApplyContext(
            commit=commit, run_id=result.run_id, instance=self.options.instance, now=now
        )
        if self._history_rewritten(status.last_applied_revision, commit.revision):
            log.warning("History was rewritten: last applied revision %s is not on the branch",
                        status.last_applied_revision)
            store.record_event(
                connection, context, event="history-rewritten",
                reason=f"last applied revision {status.last_applied_revision} is not an "
                "ancestor of the branch tip (force push?); reconciled against the new tip",
                before={"revision": status.last_applied_revision},
                after={"revision": commit.revision},
            )
        store.apply_plan(
            connection, plan, desired={r.model_id: r for r in records}, context=context
        )
        for change in plan.changes:
            if change.self_heal:
                log.warning("Self-heal: %s", change.describe())
            else:
                log.info("Applied %s", change.describe())
        finished = self.clock()
        store.finish_run(connection, result.run_id, finished=finished, applied=len(plan))
        store.write_status(
            connection,
            source=self._describe_source(),
            last_applied_revision=commit.revision,
            last_applied_at=finished,
            last_attempted_revision=commit.revision,
            last_attempted_at=finished,
            last_status="applied",
            last_error=None,
            last_run_id=result.run_id,
            next_cutover_at=result.next_cutover_at,
            updated_at=finished,
        )
        result.status = "applied"

    def _record_failure(
        self,
        result: PassResult,
        error: Exception,
        *,
        started: dt.datetime,
        trigger: str,
        log: PassLogger,
    ) -> None:
        if isinstance(error, Q2QError):
            log.error("Pass %s: %s", result.status, error)
        else:
            log.error("Pass failed with an unexpected error", exc_info=error)
        errors = [p.as_json() for p in result.problems] or [{"message": str(error)}]
        finished = self.clock()
        try:
            with self.engine.begin() as connection:
                store.lock_status(connection)
                store.record_run(
                    connection,
                    store.RunRecord(
                        id=result.run_id,
                        revision=result.revision,
                        status=result.status,
                        trigger=trigger,
                        instance=self.options.instance,
                        source=self._describe_source(),
                        started_at=started,
                        finished_at=finished,
                        changes_planned=len(result.plan),
                        change_counts=result.plan.counts(),
                        errors=errors,
                    ),
                )
                store.write_status(
                    connection,
                    source=self._describe_source(),
                    last_attempted_revision=result.revision,
                    last_attempted_at=finished,
                    last_status=result.status,
                    last_error=str(error),
                    last_run_id=result.run_id,
                    updated_at=finished,
                )
        except sa.exc.SQLAlchemyError as record_error:
            log.warning("Could not record the failed pass in the database: %s",
                        str(record_error).splitlines()[0])

    def _report_unmanaged(self, observed: list[ModelRecord], log: PassLogger) -> None:
        unmanaged = frozenset(r.model_id for r in observed if not r.managed)
        if unmanaged and unmanaged != self._reported_unmanaged:
            log.warning(
                "Found %d model rows not created by q2q-registry; they are left untouched: %s",
                len(unmanaged), ", ".join(sorted(unmanaged)),
            )
        self._reported_unmanaged = unmanaged

    def _history_rewritten(self, last_applied: str | None, revision: str) -> bool:
        if last_applied is None or last_applied == revision:
            return False
        return not self.source.contains(last_applied)

    def _describe_source(self) -> str:
        return f"{self.source.describe()}:{self.options.spec_dir}"


def describe_counts(plan: Plan) -> str:
    counts = ", ".join(f"{n} {kind}" for kind, n in plan.counts().items())
    noun = "change" if len(plan) == 1 else "changes"
    return f"{len(plan)} {noun} ({counts})" if counts else "no changes"
