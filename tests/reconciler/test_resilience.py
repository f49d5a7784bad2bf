"""Resilience of the reconciler as real processes: a database outage, two replicas, SIGKILL.

Real: `q2q run` and `q2q apply` processes, git repositories in tmp_path,
SQLite files, the session's PostgreSQL server and, for the outage, a
PostgreSQL server of the test's own that it stops and starts. Nothing is
faked. The SIGKILL test forks its hundred applies from the test process
(`support.processes.fork_q2q`) rather than starting the console script,
because the script's imports alone take longer than an apply. Its last apply
uses the script. The tests read the database through an observer engine of their own that takes
no write lock, poll every condition with a deadline, and kill every process
they start in teardown.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from registry_state import database
from registry_state.tables import audit_records, model_registry, reconcile_runs, reconciler_status
from support.fast_commits import commit_files
from support.git_repo import ModelsRepo, spec_yaml
from support.postgresql import StoppableServer
from support.processes import (
    ReconcilerProcess,
    fork_q2q,
    run_q2q,
    wait_for,
)

LEASE_S = 1.0
INTERVAL_S = 0.5
QUIET_INTERVAL_S = 3600.0
"""For tests that want passes only when they ask for one."""
APPLY_TIMEOUT_S = 20.0


# --- reading the database --------------------------------------------------------------------


@pytest.fixture
def observe() -> Iterator[Callable[[str], sa.Engine]]:
    """Return a factory of read-only engines; each read is one consistent snapshot.

    The product's engine starts every SQLite transaction with BEGIN IMMEDIATE,
    which would make the test's reads queue behind the reconciler's writes.
    """
    engines: list[sa.Engine] = []

    def factory(url: str) -> sa.Engine:
        url = database.normalise_url(url)
        if url.startswith("sqlite"):
            engine = sa.create_engine(url, connect_args={"timeout": 30})

            @sa.event.listens_for(engine, "connect")
            def _autocommit(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.isolation_level = None

            @sa.event.listens_for(engine, "begin")
            def _deferred(connection: sa.Connection) -> None:
                connection.exec_driver_sql("BEGIN")
        else:
            engine = sa.create_engine(url, isolation_level="REPEATABLE READ")
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.dispose()


@dataclass(frozen=True)
class Row:
    """The columns of a model row that a spec determines."""

    provider: str
    model_name: str
    prompt_version: str
    description: str | None
    declared_active: bool
    active: bool
    retired: bool


@dataclass(frozen=True)
class Snapshot:
    """Model rows, sync status, runs and audit counts read in one transaction."""

    rows: dict[str, Row]
    last_applied_revision: str | None
    runs: Sequence[Any]
    audit_counts: dict[uuid.UUID | None, int]
    event_counts: dict[str, int]

    def applied_runs(self, revision: str) -> list[Any]:
        return [run for run in self.runs if run.status == "applied" and run.revision == revision]


def read_snapshot(engine: sa.Engine) -> Snapshot:
    with engine.begin() as connection:
        rows = {
            row.model_id: Row(
                row.provider, row.model_name, row.prompt_version, row.description,
                row.declared_active, row.active, row.retired_at is not None,
            )
            for row in connection.execute(sa.select(model_registry))
            if row.managed_by is not None
        }
        last_applied = connection.execute(
            sa.select(reconciler_status.c.last_applied_revision)
        ).scalar_one_or_none()
        runs = connection.execute(
            sa.select(reconcile_runs).order_by(reconcile_runs.c.started_at)
        ).all()
        # Records about the pass itself (model_id "-", such as history-rewritten)
        # are not changes, so they are not counted against changes_applied.
        audit_counts: dict[uuid.UUID | None, int] = dict(connection.execute(
            sa.select(audit_records.c.reconcile_run_id, sa.func.count())
            .where(audit_records.c.model_id != "-")
            .group_by(audit_records.c.reconcile_run_id)
        ).all())
        event_counts: dict[str, int] = dict(connection.execute(
            sa.select(audit_records.c.change, sa.func.count())
            .where(audit_records.c.model_id == "-")
            .group_by(audit_records.c.change)
        ).all())
    return Snapshot(rows, last_applied, runs, audit_counts, event_counts)


def audit_problems(snapshot: Snapshot) -> list[str]:
    """Return how the audit records disagree with reconcile_runs; empty when consistent."""
    problems = []
    runs = {run.id: run for run in snapshot.runs}
    for run_id, count in sorted(snapshot.audit_counts.items(), key=str):
        run = runs.get(run_id) if run_id else None
        if run is None:
            problems.append(f"{count} audit records name run {run_id}, which is not recorded")
        elif run.status != "applied":
            problems.append(f"{count} audit records name run {run_id}, whose status is "
                            f"{run.status}")
    for run in snapshot.runs:
        if run.status != "applied":
            continue
        recorded = snapshot.audit_counts.get(run.id, 0)
        if not recorded == run.changes_applied == run.changes_planned:
            problems.append(f"run {run.id} at {run.revision[:12]}: {recorded} audit records, "
                            f"{run.changes_applied} applied, {run.changes_planned} planned")
    return problems


def applied_runs_per_revision(snapshot: Snapshot) -> Counter[str]:
    return Counter(run.revision for run in snapshot.runs if run.status == "applied")


# --- processes -------------------------------------------------------------------------------


@pytest.fixture
def start_reconciler(tmp_path: Path) -> Iterator[Callable[..., ReconcilerProcess]]:
    """Return a factory that starts `q2q run` processes; teardown kills each one."""
    started: list[ReconcilerProcess] = []
    names = itertools.count(1)

    def start(
        repo: ModelsRepo, database_url: str, *, interval: float = INTERVAL_S
    ) -> ReconcilerProcess:
        process = ReconcilerProcess(
            repo=repo.root, database_url=database_url,
            log_path=tmp_path / f"q2q-run-{next(names)}.log", interval=interval, lease=LEASE_S,
        )
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.close()


# --- 1. the database goes away and comes back ------------------------------------------------


@pytest.fixture(scope="module")
def outage_server() -> Iterator[StoppableServer]:
    """A PostgreSQL server that tests of this module stop and start again."""
    try:
        server = StoppableServer().start()
    except Exception as error:  # no binaries, or initdb failed: the reason names which
        pytest.skip(f"cannot start a dedicated PostgreSQL server: {error}")
    try:
        yield server
    finally:
        server.close()


_outage_databases = itertools.count(1)


@pytest.fixture
def outage_database(outage_server: StoppableServer) -> str:
    if not outage_server.running:  # a failed test may have left it stopped
        outage_server.start_server()
    return outage_server.create_database(f"q2q_outage_{next(_outage_databases)}")


@dataclass(frozen=True)
class FailedAttempt:
    at: dt.datetime
    number: int
    delay_s: float


_FAILED_ATTEMPT = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) WARNING reconciler\.daemon: "
    r"Pass failed \(DatabaseUnavailable, attempt (?P<number>\d+)\): "
    r".*?; retrying in (?P<delay>[\d.]+)s$",
    re.MULTILINE | re.DOTALL,
)


def failed_attempts(log: str) -> list[FailedAttempt]:
    return [
        FailedAttempt(
            dt.datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f"),
            int(match["number"]), float(match["delay"]),
        )
        for match in _FAILED_ATTEMPT.finditer(log)
    ]


# SQLite has no server to stop: the database is a file that each process opens
# itself. The nearest failures are a write lock taken by another process, which
# every transaction waits on for up to its 30 s busy timeout, or a deleted file.
# Open connections go on using a deleted file while new ones create an empty
# database. Neither is an outage that ends, so this test runs on PostgreSQL only.
@pytest.mark.postgresql
def test_database_outage_backs_off_and_recovers(
    outage_server: StoppableServer, outage_database: str, models_repo: ModelsRepo,
    start_reconciler: Callable[..., ReconcilerProcess], observe: Callable[[str], sa.Engine],
) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    first = models_repo.commit("Add claude v1")
    daemon = start_reconciler(models_repo, outage_database)
    daemon.wait_serving()
    daemon.wait_applied(first, timeout=APPLY_TIMEOUT_S)
    follower = start_reconciler(models_repo, outage_database)
    follower.wait_serving()

    outage_server.stop_server()
    models_repo.write_spec("q2q-claude-v1", active=False)
    models_repo.write_spec("q2q-claude-v2", active=True, effective_from="2025-07-01")
    pending = models_repo.commit("Switch claude to v2 while the database is down")

    def unready() -> httpx.Response | None:
        answer = daemon.get("/readyz")
        return answer if answer is not None and answer.status_code == 503 else None

    answer = wait_for(unready, timeout=10, waiting_for="/readyz to answer 503",
                      describe=daemon.log_tail)
    assert answer.json() == {"ready": False, "reason": "the database is unreachable"}
    healthz = daemon.get("/healthz")
    assert healthz is not None
    assert healthz.status_code == 200
    wait_for(lambda: len(failed_attempts(daemon.log_text())) >= 3, timeout=20,
             waiting_for="three failed attempts in the log", describe=daemon.log_tail)
    attempts = failed_attempts(daemon.log_text())[:3]
    outage_server.start_server()

    assert [attempt.number for attempt in attempts] == [1, 2, 3]
    for attempt in attempts:
        ceiling = 2.0 ** (attempt.number - 1)  # the daemon's first delay is one second
        assert ceiling / 2 - 0.05 <= attempt.delay_s <= ceiling + 0.05, attempt
    for earlier, later in itertools.pairwise(attempts):
        waited = (later.at - earlier.at).total_seconds()
        assert waited >= earlier.delay_s - 0.1, (earlier, later)

    status = daemon.wait_applied(pending, timeout=APPLY_TIMEOUT_S)
    assert status["lastAttemptedRevision"] == pending
    ready = daemon.get("/readyz")
    assert ready is not None
    assert ready.json() == {"ready": True}
    assert daemon.is_running()
    # The follower failed its lock checks during the outage too; it reports Ready
    # again once the database answers, though it runs no pass itself.
    wait_for(lambda: condition(follower, "Ready") == "True", timeout=5 * LEASE_S,
             waiting_for="the follower to report Ready", describe=follower.log_tail)
    snapshot = read_snapshot(observe(outage_database))
    assert {model_id for model_id, row in snapshot.rows.items() if row.active} == \
        {"q2q-claude-v2"}
    assert len(snapshot.applied_runs(pending)) == 1
    assert audit_problems(snapshot) == []


def condition(replica: ReconcilerProcess, kind: str) -> str | None:
    """Return the status ("True" or "False") of one condition in the replica's status."""
    status = replica.status() or {"conditions": []}
    return next((c["status"] for c in status["conditions"] if c["type"] == kind), None)


@pytest.mark.postgresql
def test_run_without_database_exits_with_message(
    outage_server: StoppableServer, outage_database: str, models_repo: ModelsRepo
) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.commit("Add claude v1")
    outage_server.stop_server()
    try:
        result = run_q2q("run", "--repo", str(models_repo.root), "--db", outage_database,
                         "--port", "0")
    finally:
        outage_server.start_server()

    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot connect to the database: "), result.stderr
    assert "Traceback" not in result.stderr


# --- 2. two replicas on one database ---------------------------------------------------------


TWO_REPLICA_COMMITS = 50
HANDOVER_S = 5 * LEASE_S
CLAUDE_PAIR = ("q2q-claude-a", "q2q-claude-b")


class ActiveCountSampler:
    """Sample the active rows per provider on a thread until stopped."""

    QUERY = sa.text(
        "SELECT provider, count(*) FROM model_registry WHERE active GROUP BY provider"
    )

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.samples = 0
        self.highest: Counter[str] = Counter()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="active-sampler", daemon=True)

    def __enter__(self) -> ActiveCountSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            try:
                with self.engine.begin() as connection:
                    counts = connection.execute(self.QUERY).all()
            except sa.exc.SQLAlchemyError as error:
                self.errors.append(str(error).splitlines()[0])
                continue
            self.samples += 1
            for provider, count in counts:
                self.highest[provider] = max(self.highest[provider], count)


def only_leader(replicas: tuple[ReconcilerProcess, ...]) -> ReconcilerProcess | None:
    """Return the one replica whose status reports it as leader, or None."""
    leaders = [replica for replica in replicas if (replica.status() or {}).get("leader")]
    return leaders[0] if len(leaders) == 1 else None


def two_replica_edit(repo: ModelsRepo, number: int) -> None:
    """Edit the specs for commit `number`; every seventh commit changes nothing."""
    if number % 7 == 0:
        return
    active = CLAUDE_PAIR[number % 2]
    for model_id in CLAUDE_PAIR:
        repo.write_spec(model_id, active=model_id == active,
                        effective_from="2025-03-01" if model_id == CLAUDE_PAIR[0]
                        else "2025-04-01")
    if number % 3 == 0:
        repo.write_spec("q2q-openai-v1", provider="openai", model="gpt-4o", active=True,
                        description=f"edited in commit {number}")
    if number % 5 == 0:
        repo.write_spec(f"q2q-gemini-c{number}", provider="gemini", model="gemini-1.5-pro")
    older = f"models/q2q-gemini-c{number - 5}.yaml"
    if number % 10 == 0 and (repo.root / older).exists():
        repo.remove(older)


def test_two_replicas_apply_each_revision_once(
    database_url: str, models_repo: ModelsRepo,
    start_reconciler: Callable[..., ReconcilerProcess], observe: Callable[[str], sa.Engine],
) -> None:
    two_replica_edit(models_repo, 1)
    models_repo.write_spec("q2q-claude-c", effective_from="2025-05-01")
    models_repo.write_spec("q2q-openai-v1", provider="openai", model="gpt-4o", active=True)
    revisions = [models_repo.commit("Add the first models")]
    # The first process creates the schema; the second starts once it exists.
    first = start_reconciler(models_repo, database_url)
    first.wait_serving()
    replicas = (first, start_reconciler(models_repo, database_url))
    replicas[1].wait_serving()
    engine = observe(database_url)

    def applied(revision: str) -> bool:
        return read_snapshot(engine).last_applied_revision == revision

    wait_for(lambda: applied(revisions[0]), timeout=APPLY_TIMEOUT_S, waiting_for="the first commit")
    with ActiveCountSampler(engine) as sampler, ThreadPoolExecutor(2) as pool:
        for number in range(2, TWO_REPLICA_COMMITS + 2):
            two_replica_edit(models_repo, number)
            revision = models_repo.commit(f"Commit {number}")
            revisions.append(revision)
            # Most commits are also synced on both replicas at once, so two passes
            # race for the revision; the rest wait for the leader's interval pass.
            if number % 4:
                list(pool.map(lambda replica: replica.post("/q2q/registry/sync"), replicas))
            wait_for(functools.partial(applied, revision), timeout=APPLY_TIMEOUT_S,
                     waiting_for=f"commit {number} to be applied",
                     describe=lambda: replicas[0].log_tail() + "\n" + replicas[1].log_tail())

    snapshot = read_snapshot(engine)
    assert applied_runs_per_revision(snapshot) == Counter(revisions)
    assert [run for run in snapshot.runs if run.status != "applied"] == []
    # Both replicas applied some revisions, and between them each revision once.
    applied_by = [replica.log_text().count("] Pass applied in ") for replica in replicas]
    assert sum(applied_by) == len(revisions), applied_by
    assert min(applied_by) > 0, applied_by
    assert audit_problems(snapshot) == []
    assert sampler.errors == []
    assert sampler.samples > 100
    assert max(sampler.highest.values()) == 1, sampler.highest

    # Kill the leader; the follower tries the lock once per lease period and runs
    # a pass as soon as it wins, without being asked.
    leader = wait_for(lambda: only_leader(replicas), timeout=10, waiting_for="exactly one leader")
    follower = next(replica for replica in replicas if replica is not leader)
    leader.kill()
    handover_deadline = time.monotonic() + HANDOVER_S
    two_replica_edit(models_repo, 1)
    models_repo.write_spec("q2q-claude-c", effective_from="2025-05-01",
                           description="after the leader died")
    after_kill = models_repo.commit("Edit after the leader was killed")
    status = follower.wait_applied(after_kill,
                                   timeout=handover_deadline - time.monotonic())

    assert status["leader"] is True
    assert follower.log_text().count("This replica is now the leader") == 1
    assert len(read_snapshot(engine).applied_runs(after_kill)) == 1


# --- 3. SIGKILL at random points of many applies ---------------------------------------------


KILL_ROUNDS = 50
KILL_SPECS = 200
KILL_SEED = 20240611
PROVIDERS = ("claude", "openai", "gemini")


@dataclass(frozen=True)
class KillSpec:
    provider: str
    model: str
    description: str
    active: bool


def kill_round_specs(round_number: int) -> dict[str, KillSpec]:
    """Return the specs of round `round_number`: a third of the descriptions change each
    round, eight specs are removed (and those of the round before restored), and the
    active model of each provider moves."""
    present = [
        index for index in range(KILL_SPECS)
        if round_number == 0 or (index + round_number) % 25 != 0
    ]
    specs: dict[str, KillSpec] = {}
    for provider_index, provider in enumerate(PROVIDERS):
        indexes = [index for index in present if index % len(PROVIDERS) == provider_index]
        active = indexes[round_number % 4]
        for index in indexes:
            specs[f"q2q-{provider}-k{index:03d}"] = KillSpec(
                provider=provider,
                model=f"{provider}-model-{index % 4}",
                description=f"round {_last_edit(round_number, index)} of spec {index}",
                active=index == active,
            )
    return specs


def _last_edit(round_number: int, index: int) -> int:
    """Return the latest round, up to `round_number`, that edited spec `index`."""
    return max(0, round_number - (round_number - index) % 3)


def expected_rows(previous: Mapping[str, Row], specs: Mapping[str, KillSpec]) -> dict[str, Row]:
    """Return the rows after applying `specs` over `previous`, computed from the specs."""
    rows = {
        model_id: replace(row, active=False, retired=True)
        for model_id, row in previous.items() if model_id not in specs
    }
    for model_id, spec in specs.items():
        rows[model_id] = Row(spec.provider, spec.model, "v2.0", spec.description,
                             declared_active=spec.active, active=spec.active, retired=False)
    return rows


def commit_kill_round(repo: ModelsRepo, round_number: int) -> tuple[str, dict[str, KillSpec]]:
    """Commit the specs of `round_number` over those of the round before; return the sha."""
    specs = kill_round_specs(round_number)
    before = kill_round_specs(round_number - 1) if round_number else {}
    changes: dict[str, str | None] = {
        f"models/{model_id}.yaml": None for model_id in before.keys() - specs.keys()
    }
    for model_id, spec in specs.items():
        if before.get(model_id) != spec:
            changes[f"models/{model_id}.yaml"] = spec_yaml(
                model_id, provider=spec.provider, model=spec.model, active=spec.active,
                description=spec.description,
            )
    return commit_files(repo.root, changes, subject=f"Round {round_number}"), specs


@dataclass(frozen=True)
class KillOutcome:
    killed: bool
    loaded: bool
    """True when the child's log shows the specs loaded; the transaction opens right after."""
    duration_s: float

    def phase(self, *, committed: bool) -> str:
        """Name where the kill landed, given whether the new revision was committed."""
        if not self.killed:
            return "finished"
        if committed:
            return "after commit"
        return "rolled back" if self.loaded else "before loading"


def apply_with_kill(arguments: list[str], *, delay_s: float | None, log_path: Path) -> KillOutcome:
    """Run `q2q -vv apply`; SIGKILL it after `delay_s` unless it has finished by then."""
    log_path.write_text("")
    started = time.monotonic()
    child = fork_q2q("-vv", "apply", *arguments, log_path=log_path)
    child.join(timeout=APPLY_TIMEOUT_S if delay_s is None else delay_s)
    killed = child.is_alive()
    if killed:
        child.kill()
    child.join(timeout=10)
    duration_s = time.monotonic() - started
    log = log_path.read_text(errors="replace")
    if delay_s is None:
        assert not killed, f"apply did not finish; {log[-3000:]}"
    if not killed:
        assert child.exitcode == 0, log[-3000:]
    return KillOutcome(killed=killed, loaded="DEBUG reconciler.desired: Loaded" in log,
                       duration_s=duration_s)


def test_sigkill_leaves_revision_boundary(
    database_url: str, models_repo: ModelsRepo, observe: Callable[[str], sa.Engine],
    tmp_path: Path,
) -> None:
    arguments = ["--repo", str(models_repo.root), "--db", database_url]
    engine = observe(database_url)
    previous, specs = commit_kill_round(models_repo, 0)
    expected = {previous: expected_rows({}, specs)}
    # Kills are spread over the time a whole apply took last (it changes with the
    # load of the machine), and a little beyond, so that some applies finish.
    window_s = apply_with_kill(arguments, delay_s=None,
                               log_path=tmp_path / "apply-0.log").duration_s
    assert read_snapshot(engine).rows == expected[previous]

    rng = random.Random(KILL_SEED)
    phases: Counter[str] = Counter()
    for round_number in range(1, KILL_ROUNDS + 1):
        revision, specs = commit_kill_round(models_repo, round_number)
        expected[revision] = expected_rows(expected[previous], specs)

        outcome = apply_with_kill(arguments, delay_s=rng.uniform(0.0, 1.1 * window_s),
                                  log_path=tmp_path / f"apply-{round_number}-killed.log")
        after_kill = read_snapshot(engine)
        boundary = after_kill.last_applied_revision
        phase = outcome.phase(committed=boundary == revision)
        phases[phase] += 1
        assert boundary in (previous, revision), (round_number, phase)
        assert after_kill.rows == expected[boundary], (round_number, phase)
        assert audit_problems(after_kill) == [], (round_number, phase)

        converging = apply_with_kill(arguments, delay_s=None,
                                     log_path=tmp_path / f"apply-{round_number}.log")
        if boundary == previous:
            window_s = converging.duration_s
        converged = read_snapshot(engine)
        assert converged.last_applied_revision == revision
        assert converged.rows == expected[revision], round_number
        assert audit_problems(converged) == []
        previous = revision

    final = run_q2q("apply", *arguments)
    assert final.returncode == 0, final.stderr
    assert final.stdout == f"Up to date at {previous[:12]}: no changes.\n"
    snapshot = read_snapshot(engine)
    assert applied_runs_per_revision(snapshot) == Counter(list(expected))
    assert [run.status for run in snapshot.runs if run.status != "applied"] == []
    # The kills landed all over the apply: before it read the specs, inside its
    # transaction (rolled back), and after it had committed or finished.
    assert phases["rolled back"] >= 5, phases
    assert phases["before loading"] >= 1, phases
    assert phases["after commit"] + phases["finished"] >= 1, phases


# --- focused cases ---------------------------------------------------------------------------


def sync(daemon: ReconcilerProcess) -> dict[str, Any]:
    answer = daemon.post("/q2q/registry/sync")
    assert answer is not None, daemon.log_tail()
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def audit_of(engine: sa.Engine, **where: Any) -> Sequence[Any]:
    query = sa.select(audit_records).order_by(audit_records.c.id)
    for column, value in where.items():
        query = query.where(audit_records.c[column] == value)
    with engine.begin() as connection:
        return connection.execute(query).all()


def test_force_push_reconciled_against_new_head(
    database_url: str, models_repo: ModelsRepo,
    start_reconciler: Callable[..., ReconcilerProcess], observe: Callable[[str], sa.Engine],
) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    base = models_repo.commit("Add claude v1")
    models_repo.write_spec("q2q-claude-v1", active=False)
    models_repo.write_spec("q2q-claude-v2", active=True, effective_from="2025-07-01")
    dropped = models_repo.commit("Activate claude v2")
    daemon = start_reconciler(models_repo, database_url, interval=QUIET_INTERVAL_S)
    daemon.wait_serving()
    daemon.wait_applied(dropped, timeout=APPLY_TIMEOUT_S)

    models_repo.repo.git.reset("--hard", base)
    models_repo.write_spec("q2q-claude-v3", active=True, effective_from="2025-08-01")
    models_repo.write_spec("q2q-claude-v1", active=False)
    head = models_repo.commit("Activate claude v3 instead")
    result = sync(daemon)

    assert result["revision"] == head
    assert result["status"] == "applied"
    engine = observe(database_url)
    snapshot = read_snapshot(engine)
    assert {model_id: row.active for model_id, row in snapshot.rows.items()} == {
        "q2q-claude-v1": False, "q2q-claude-v2": False, "q2q-claude-v3": True,
    }
    assert snapshot.rows["q2q-claude-v2"].retired
    [event] = audit_of(engine, change="history-rewritten")
    assert event.model_id == "-"
    assert event.revision == head
    assert event.before == {"revision": dropped}
    assert event.after == {"revision": head}
    assert event.reason == (
        f"last applied revision {dropped} is not an ancestor of the branch tip (force push?); "
        "reconciled against the new tip"
    )
    assert len(snapshot.applied_runs(head)) == 1
    assert event.reconcile_run_id == snapshot.applied_runs(head)[0].id
    assert audit_problems(snapshot) == []
    assert "History was rewritten: last applied revision " + dropped in daemon.log_text()


def test_self_heal_reverts_hand_edit(
    database_url: str, models_repo: ModelsRepo,
    start_reconciler: Callable[..., ReconcilerProcess], observe: Callable[[str], sa.Engine],
) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True, description="from git")
    models_repo.write_spec("q2q-claude-v2", effective_from="2025-07-01")
    revision = models_repo.commit("Add two claude models")
    daemon = start_reconciler(models_repo, database_url, interval=QUIET_INTERVAL_S)
    daemon.wait_serving()
    daemon.wait_applied(revision, timeout=APPLY_TIMEOUT_S)

    writer = database.connect(database_url)
    try:
        with writer.begin() as connection:
            connection.execute(sa.update(model_registry)
                               .where(model_registry.c.model_id == "q2q-claude-v1")
                               .values(active=False, description="edited by hand"))
    finally:
        writer.dispose()
    result = sync(daemon)

    assert result["revision"] == revision
    assert [(c["kind"], c["modelId"], c["selfHeal"]) for c in result["changes"]] == [
        ("update", "q2q-claude-v1", True), ("activate", "q2q-claude-v1", True),
    ]
    engine = observe(database_url)
    healed = read_snapshot(engine).rows["q2q-claude-v1"]
    assert healed.active
    assert healed.description == "from git"
    records = audit_of(engine, change="self-heal")
    assert [(r.model_id, r.revision, r.before, r.after) for r in records] == [
        ("q2q-claude-v1", revision, {"description": "edited by hand"},
         {"description": "from git"}),
        ("q2q-claude-v1", revision, {"active": False}, {"active": True}),
    ]
    assert {r.reason for r in records} == {
        "update to revert an out-of-band edit of the database",
        "activate to revert an out-of-band edit of the database",
    }
    assert audit_problems(read_snapshot(engine)) == []
    assert sync(daemon)["status"] == "unchanged"


def test_unmanaged_row_never_touched(
    database_url: str, models_repo: ModelsRepo,
    start_reconciler: Callable[..., ReconcilerProcess], observe: Callable[[str], sa.Engine],
) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    first = models_repo.commit("Add claude v1")
    daemon = start_reconciler(models_repo, database_url, interval=QUIET_INTERVAL_S)
    daemon.wait_serving()
    daemon.wait_applied(first, timeout=APPLY_TIMEOUT_S)
    created = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    hand_made = {
        "id": uuid.uuid4(), "model_id": "hand-made-gemini", "provider": "gemini",
        "model_name": "gemini-1.0", "prompt_version": "v0.9", "thresholds": {"x": 1},
        "effective_from": created, "active": True, "created_at": created,
        "updated_at": created, "managed_by": None,
    }
    writer = database.connect(database_url)
    try:
        with writer.begin() as connection:
            connection.execute(sa.insert(model_registry).values(**hand_made))
    finally:
        writer.dispose()
    engine = observe(database_url)

    def hand_made_row() -> dict[str, Any]:
        with engine.begin() as connection:
            row = connection.execute(sa.select(model_registry).where(
                model_registry.c.model_id == "hand-made-gemini")).one()
        return dict(row._mapping)

    before = hand_made_row()
    models_repo.write_spec("q2q-gemini-v1", provider="gemini", model="gemini-1.5-pro")
    second = models_repo.commit("Add an inactive gemini model")
    assert sync(daemon)["revision"] == second
    models_repo.remove("models/q2q-gemini-v1.yaml")
    models_repo.write_spec("q2q-claude-v2", effective_from="2025-07-01")
    third = models_repo.commit("Retire the gemini model")
    assert sync(daemon)["revision"] == third
    assert sync(daemon)["status"] == "unchanged"

    assert hand_made_row() == before
    assert audit_of(engine, model_id="hand-made-gemini") == []
    assert "Found 1 model rows not created by q2q-registry; they are left untouched: " \
        "hand-made-gemini" in daemon.log_text()
    snapshot = read_snapshot(engine)
    assert snapshot.rows["q2q-gemini-v1"].retired
    assert audit_problems(snapshot) == []


def test_unmanaged_active_row_conflict_named(
    engine: sa.Engine, database_url: str, models_repo: ModelsRepo
) -> None:
    with engine.begin() as connection:
        connection.execute(sa.insert(model_registry).values(
            id=uuid.uuid4(), model_id="hand-made-gemini", provider="gemini",
            model_name="gemini-1.0", prompt_version="v0.9", thresholds={},
            effective_from=dt.datetime(2024, 5, 1, tzinfo=dt.UTC), active=True,
        ))
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.write_spec("q2q-gemini-v1", provider="gemini", model="gemini-1.5-pro",
                           active=True)
    models_repo.commit("Add claude and an active gemini model")

    result = run_q2q("apply", "--repo", str(models_repo.root), "--db", database_url)

    assert result.returncode == 1
    assert "models/q2q-gemini-v1.yaml" in result.stderr, result.stderr
    assert "hand-made-gemini" in result.stderr, result.stderr
    with engine.connect() as connection:
        model_ids = connection.execute(sa.select(model_registry.c.model_id)).scalars().all()
    assert model_ids == ["hand-made-gemini"]


def test_readyz_answers_during_open_write(
    database_url: str, models_repo: ModelsRepo, request: pytest.FixtureRequest,
    start_reconciler: Callable[..., ReconcilerProcess],
) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    revision = models_repo.commit("Add claude v1")
    daemon = start_reconciler(models_repo, database_url, interval=QUIET_INTERVAL_S)
    daemon.wait_serving()
    daemon.wait_applied(revision, timeout=APPLY_TIMEOUT_S)

    # A transaction that has written and not committed yet, like a long pass.
    writer = database.connect(database_url)
    try:
        with writer.connect() as connection:
            transaction = connection.begin()
            connection.execute(sa.update(model_registry).values(description="in flight"))
            try:
                ready = daemon.client.get("/readyz", timeout=2.0)
            except httpx.TimeoutException:
                ready = None
            finally:
                transaction.rollback()
    finally:
        writer.dispose()

    assert ready is not None, "/readyz gave no answer within 2 s"
    assert ready.json() == {"ready": True}


def test_run_rejects_missing_repository(tmp_path: Path) -> None:
    result = run_q2q("run", "--repo", str(tmp_path / "absent"),
                     "--db", f"sqlite:///{tmp_path / 'q2q.db'}", "--port", "0")

    assert result.returncode == 1
    assert result.stderr.endswith(
        f"\nerror: repository '{tmp_path / 'absent'}' does not exist\n"
    ), result.stderr
    assert "Traceback" not in result.stderr
