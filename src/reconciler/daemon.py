"""The long-running reconciler: passes on an interval, on webhooks, on SIGHUP and at cutovers.

`Daemon.run()` processes pass requests one at a time on the calling thread.
APScheduler enqueues the interval pass (with jitter), a pass at the next
scheduled cutover, the retries and the leadership checks; the HTTP API
enqueues passes for `POST /q2q/registry/sync` and push webhooks.

Failures are sorted by what to do next:
- transient (database or git unreachable): retry with capped exponential
  backoff and jitter;
- terminal (invalid specs, the mass-retire guard): stall on that revision, retry
  it only every `stall_retry_s`, and go on at once when a new commit arrives.

Only the leader runs scheduled passes; any replica runs the passes that a
request asked for, serialised with the others by the per-pass database lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.drift_scheduler import DriftScheduler
from reconciler.failures import backoff_delay, terminal_reason, transient_reason
from reconciler.leadership import LeaderLock
from reconciler.metrics import Metrics
from reconciler.reconcile import (
    PassFailedError,
    PassLogger,
    PassResult,
    Reconciler,
    describe_counts,
)
from registry_state import database, queries
from registry_state.errors import (
    GitSourceError,
    StoreUnavailableError,
)

logger = logging.getLogger(__name__)

SCHEDULED_TRIGGERS = frozenset({"interval", "cutover", "retry", "leadership", "startup"})


@dataclass
class DaemonSettings:
    interval_s: float = 60.0
    jitter: float = 0.1
    """Fraction of the interval by which each interval pass may move, to spread replicas."""
    lease_s: float = 5.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0
    stall_retry_s: float = 600.0
    scheduled: bool = True
    """False for `q2q serve`: passes run only on request."""


@dataclass
class PassTicket:
    """A request for a pass; `wait` returns the result of the pass that served it."""

    trigger: str
    done: threading.Event = field(default_factory=threading.Event)
    result: PassResult | None = None
    error: Exception | None = None
    skipped: str | None = None

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)


@dataclass
class DaemonState:
    """The state of this replica that the API reports."""

    is_leader: bool = False
    reconciling: bool = False
    last_result: PassResult | None = None
    last_error: str | None = None
    last_error_reason: str | None = None
    stalled_revision: str | None = None
    stalled_reason: str | None = None
    consecutive_failures: int = 0
    next_pass_at: dt.datetime | None = None


class Daemon:
    def __init__(
        self,
        reconciler: Reconciler,
        *,
        leader_lock: LeaderLock,
        settings: DaemonSettings | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.reconciler = reconciler
        self.leader_lock = leader_lock
        self.settings = settings or DaemonSettings()
        self.metrics = metrics or Metrics()
        self.state = DaemonState()
        self._requests: queue.Queue[PassTicket] = queue.Queue()
        self._stopping = threading.Event()
        self._stalled_until: float = 0.0
        self._backoff_until: float = 0.0
        self._scheduler = BackgroundScheduler(timezone=dt.UTC)
        self.drift = DriftScheduler.for_daemon(self)
        reconciler.options.log_summary = False

    @property
    def engine(self) -> sa.Engine:
        return self.reconciler.engine

    @property
    def reader(self) -> sa.Engine:
        """The engine for read-only transactions, which on SQLite skip the write lock."""
        return database.reader(self.reconciler.engine)

    # Requests -------------------------------------------------------------------------

    def request_pass(self, trigger: str) -> PassTicket:
        """Queue a pass; passes queued while one runs are served by one pass."""
        ticket = PassTicket(trigger)
        self._requests.put(ticket)
        return ticket

    def stop(self) -> None:
        """Finish the pass in flight (it commits or rolls back), then return from `run`."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # Main loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Serve pass requests until `stop` is called."""
        if self.settings.scheduled:
            self._start_scheduler()
            with contextlib.suppress(StoreUnavailableError):
                self._try_lead()  # the startup pass records the failure and backs off
            self.request_pass("startup")
        logger.info("Reconciler started: %s, every %gs",
                    self.reconciler.source.describe(), self.settings.interval_s)
        try:
            while not self._stopping.is_set():
                try:
                    ticket = self._requests.get(timeout=0.2)
                except queue.Empty:
                    continue
                tickets = [ticket, *self._drain()]
                self._serve(tickets)
        finally:
            if self._scheduler.running:
                self._scheduler.shutdown(wait=False)
            self.leader_lock.release()
            self.state.is_leader = False
            self.metrics.is_leader.set(0)
            for pending in self._drain():
                pending.skipped = "shutting down"
                pending.done.set()
            logger.info("Reconciler stopped")

    def _drain(self) -> list[PassTicket]:
        tickets = []
        while True:
            try:
                tickets.append(self._requests.get_nowait())
            except queue.Empty:
                return tickets

    def _serve(self, tickets: list[PassTicket]) -> None:
        requested = any(t.trigger not in SCHEDULED_TRIGGERS for t in tickets)
        skip = None if requested else self._scheduled_skip_reason(tickets)
        if skip:
            logger.debug("Skipped a scheduled pass: %s", skip)
            for ticket in tickets:
                ticket.skipped = skip
                ticket.done.set()
            return

        trigger = next((t.trigger for t in tickets if t.trigger not in SCHEDULED_TRIGGERS),
                       tickets[0].trigger)
        result, error = self._run_pass(trigger)
        for ticket in tickets:
            ticket.result, ticket.error = result, error
            ticket.done.set()

    def _scheduled_skip_reason(self, tickets: list[PassTicket]) -> str | None:
        """Return why the scheduled pass of `tickets` must not run now, or None to run it."""
        if all(t.trigger == "interval" for t in tickets) and \
                time.monotonic() < self._backoff_until:
            return "waiting for the retry after a failed pass"
        try:
            leading = self._try_lead()
        except StoreUnavailableError as error:
            # Nothing can be applied while the database is away: count the pass as
            # failed, so that its retries back off like those of any transient failure.
            self._on_transient(error, reason="DatabaseUnavailable")
            return "the database is unreachable"
        if not leading:
            return "this replica is a follower"
        if self._stall_holds():
            return f"stalled on revision {self.state.stalled_revision}"
        return None

    def _run_pass(self, trigger: str) -> tuple[PassResult | None, Exception | None]:
        self.state.reconciling = True
        try:
            result = self.reconciler.reconcile(trigger=trigger)
        except PassFailedError as failure:
            self._on_failure(failure)
            self.metrics.observe_pass(failure.result)
            self._log_summary(failure.result)
            return failure.result, failure.cause
        except Exception as error:  # a bug: keep serving, report it, retry with backoff
            logger.exception("Reconcile pass failed unexpectedly")
            self._on_transient(error, reason="UnexpectedError")
            return None, error
        finally:
            self.state.reconciling = False

        self.metrics.observe_pass(result)
        self._log_summary(result)
        self.state.last_result = result
        self.state.last_error = self.state.last_error_reason = None
        self.state.stalled_revision = self.state.stalled_reason = None
        self.state.consecutive_failures = 0
        self._backoff_until = 0.0
        self._schedule_cutover(result.next_cutover_at)
        self.drift.sync(result.revision)
        self._refresh_active_models()
        return result, None

    def _log_summary(self, result: PassResult) -> None:
        log = PassLogger(logger, {"pass_id": str(result.run_id)[:8], "revision": result.revision})
        upcoming = self.next_pass_at()
        log.info("Pass %s in %.3fs: %s; next pass at %s", result.status, result.duration_s,
                 describe_counts(result.plan),
                 upcoming.isoformat(timespec="seconds") if upcoming else "the next request")

    def next_pass_at(self) -> dt.datetime | None:
        """Return when the scheduler fires next: interval, cutover or retry."""
        if not self._scheduler.running:
            return None
        times = [job.next_run_time for job in self._scheduler.get_jobs()
                 if job.id != "leadership" and job.next_run_time is not None]
        return min(times, default=None)

    # Failures -------------------------------------------------------------------------

    def _on_failure(self, failure: PassFailedError) -> None:
        cause = failure.cause
        self.state.last_result = failure.result
        self.state.last_error = str(cause)
        reason = terminal_reason(cause)
        if reason is not None:
            self.state.last_error_reason = reason
            self.state.stalled_revision = failure.result.revision
            self.state.stalled_reason = reason
            self.state.consecutive_failures = 0
            self._stalled_until = time.monotonic() + self.settings.stall_retry_s
            logger.error(
                "Stalled on revision %s (%s); retrying it in %.0fs or at the next commit",
                (failure.result.revision or "?")[:12], reason, self.settings.stall_retry_s,
            )
            self._schedule_retry(self.settings.stall_retry_s)
            return
        self._on_transient(cause, reason=transient_reason(cause))

    def _on_transient(self, error: Exception, *, reason: str) -> None:
        self.state.last_error = str(error)
        self.state.last_error_reason = reason
        self.state.consecutive_failures += 1
        if reason == "GitUnavailable":
            self.metrics.git_errors.inc()
        elif reason == "DatabaseUnavailable":
            self.metrics.database_errors.inc()
        delay = backoff_delay(
            self.state.consecutive_failures,
            initial=self.settings.backoff_initial_s,
            maximum=self.settings.backoff_max_s,
        )
        logger.warning("Pass failed (%s, attempt %d): %s; retrying in %.1fs",
                       reason, self.state.consecutive_failures, error, delay)
        self._backoff_until = time.monotonic() + delay
        self._schedule_retry(delay)

    def _stall_holds(self) -> bool:
        """Return True while the tip is still the stalled revision and no retry is due."""
        if self.state.stalled_revision is None:
            return False
        if time.monotonic() >= self._stalled_until:
            return False
        try:
            self.reconciler.source.refresh()
            tip = self.reconciler.source.resolve().revision
        except GitSourceError:
            return True
        return tip == self.state.stalled_revision

    # Scheduling -----------------------------------------------------------------------

    def _start_scheduler(self) -> None:
        interval = self.settings.interval_s
        jitter = interval * self.settings.jitter
        self._scheduler.add_job(
            self.request_pass, IntervalTrigger(seconds=interval, jitter=jitter),
            args=["interval"], id="interval", coalesce=True, max_instances=1,
        )
        self._scheduler.add_job(
            self._try_lead_and_request, IntervalTrigger(seconds=self.settings.lease_s),
            id="leadership", coalesce=True, max_instances=1,
        )
        self._scheduler.start()

    def _try_lead_and_request(self) -> None:
        was_leader = self.state.is_leader
        try:
            leading = self._try_lead()
        except StoreUnavailableError as error:
            logger.debug("Leadership check skipped: %s", error)
            return  # passes record the outage and retry with backoff
        if leading and not was_leader:
            self.request_pass("leadership")

    def _try_lead(self) -> bool:
        """Return True if this replica leads now; raise `StoreUnavailableError`, as a
        follower, when the database cannot be reached."""
        try:
            held = self.leader_lock.try_acquire()
        except StoreUnavailableError:
            held = False
            self._set_leader(held)
            raise
        self._set_leader(held)
        if not held:
            self._forget_outage()
        return held

    def _forget_outage(self) -> None:
        """Clear a recorded database outage; a follower runs no pass that would clear it."""
        if self.state.last_error_reason == "DatabaseUnavailable":
            self.state.last_error = self.state.last_error_reason = None
            self.state.consecutive_failures = 0
            self._backoff_until = 0.0

    def _set_leader(self, held: bool) -> None:
        if held != self.state.is_leader:
            logger.info("This replica is now %s", "the leader" if held else "a follower")
        self.state.is_leader = held
        self.metrics.is_leader.set(1 if held else 0)

    def _schedule_cutover(self, at: dt.datetime | None) -> None:
        if not self._scheduler.running:
            return
        if at is None:
            if self._scheduler.get_job("cutover"):
                self._scheduler.remove_job("cutover")
            return
        logger.info("Next scheduled cutover at %s", at.isoformat())
        self._scheduler.add_job(
            self.request_pass, DateTrigger(run_date=at), args=["cutover"], id="cutover",
            replace_existing=True, misfire_grace_time=None,
        )

    def _schedule_retry(self, delay_s: float) -> None:
        if not self._scheduler.running:
            return
        at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay_s)
        self.state.next_pass_at = at
        self._scheduler.add_job(
            self.request_pass, DateTrigger(run_date=at), args=["retry"], id="retry",
            replace_existing=True, misfire_grace_time=None,
        )

    def _refresh_active_models(self) -> None:
        try:
            with self.engine.connect() as connection:
                counts = queries.count_active_by_provider(connection)
        except sa.exc.SQLAlchemyError:
            return
        self.metrics.set_active_models(counts)

    # Readiness ------------------------------------------------------------------------

    def database_reachable(self) -> bool:
        try:
            with self.reader.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False
