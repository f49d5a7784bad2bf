"""The daemon's scheduling, stall and backoff behaviour, with a real scheduler and database."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler.daemon import Daemon, DaemonSettings
from reconciler.failures import backoff_delay
from reconciler.git_source import GitSource
from reconciler.leadership import leader_lock_for
from reconciler.reconcile import ReconcileOptions, Reconciler
from registry_state.tables import model_registry, reconcile_runs
from support.git_repo import ModelsRepo


def wait_until(condition: Callable[[], bool], *, deadline_s: float) -> float:
    """Poll `condition` until it holds; return the monotonic time it first held."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {deadline_s}s")


def active_ids(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(
            sa.select(model_registry.c.model_id).where(model_registry.c.active.is_(True))
        ).scalars())


def run_count(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(
            sa.select(sa.func.count()).select_from(reconcile_runs)).scalar_one())


@pytest.fixture
def running_daemon(
    models_repo: ModelsRepo, engine: sa.Engine
) -> Iterator[Callable[..., Daemon]]:
    started: list[tuple[Daemon, threading.Thread]] = []

    def start(**settings: Any) -> Daemon:
        source = GitSource(str(models_repo.root))
        reconciler = Reconciler(engine, source, options=ReconcileOptions(instance="daemon-test"))
        daemon = Daemon(reconciler, leader_lock=leader_lock_for(engine),
                        settings=DaemonSettings(**settings))
        thread = threading.Thread(target=daemon.run, daemon=True)
        thread.start()
        started.append((daemon, thread))
        return daemon

    yield start
    for daemon, thread in started:
        daemon.stop()
        thread.join(timeout=10)


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [pytest.param(1, 1.0, id="first"), pytest.param(4, 8.0, id="fourth"),
     pytest.param(30, 300.0, id="capped")],
)
def test_backoff_delay_bounds(attempt: int, ceiling: float) -> None:
    delays = [backoff_delay(attempt, initial=1.0, maximum=300.0) for _ in range(200)]

    assert min(delays) >= ceiling / 2
    assert max(delays) <= ceiling
    assert len(set(delays)) > 1


def test_cutover_fires_at_instant(
    models_repo: ModelsRepo, engine: sa.Engine, running_daemon: Callable[..., Daemon]
) -> None:
    cutover = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).replace(microsecond=0)
    models_repo.write_spec("q2q-claude-v2", active=True, effective_from="2025-06-01")
    models_repo.write_spec("q2q-claude-v3", active=True,
                           effective_from=f'"{cutover.isoformat()}"')
    models_repo.commit("Schedule v3")

    running_daemon(interval_s=3600)
    wait_until(lambda: active_ids(engine) == {"q2q-claude-v2"}, deadline_s=10)
    wait_until(lambda: active_ids(engine) == {"q2q-claude-v3"}, deadline_s=10)
    switched_at = dt.datetime.now(dt.UTC)

    assert (switched_at - cutover).total_seconds() < 1.0


def test_stall_skips_until_new_commit(
    models_repo: ModelsRepo, engine: sa.Engine, running_daemon: Callable[..., Daemon]
) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.commit("Add a model")
    models_repo.write("models/q2q-claude-v1.yaml", "id: q2q-claude-v1\n")
    bad = models_repo.commit("Break the spec")

    daemon = running_daemon(interval_s=0.2, jitter=0.0)
    wait_until(lambda: daemon.state.stalled_revision == bad, deadline_s=10)
    runs_when_stalled = run_count(engine)
    interval_passes = [daemon.request_pass("interval") for _ in range(3)]
    for ticket in interval_passes:
        assert ticket.wait(10)

    assert {ticket.skipped for ticket in interval_passes} == {f"stalled on revision {bad}"}
    assert run_count(engine) == runs_when_stalled

    models_repo.write_spec("q2q-claude-v1", active=True, description="fixed")
    fixed = models_repo.commit("Fix the spec")
    wait_until(lambda: daemon.state.last_result is not None
               and daemon.state.last_result.revision == fixed
               and daemon.state.last_result.status == "applied", deadline_s=10)
    assert daemon.state.stalled_revision is None


def test_transient_failure_retried(
    models_repo: ModelsRepo, engine: sa.Engine, running_daemon: Callable[..., Daemon],
) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.commit("Add a model")
    daemon = running_daemon(interval_s=3600, backoff_initial_s=0.2)
    wait_until(lambda: active_ids(engine) == {"q2q-claude-v1"}, deadline_s=10)
    real_resolve = daemon.reconciler.source.resolve
    failures = {"left": 2}

    def flaky_resolve(revision: str | None = None) -> Any:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise sa.exc.OperationalError("SELECT 1", {}, Exception("server closed"))
        return real_resolve(revision)

    daemon.reconciler.source.resolve = flaky_resolve  # type: ignore[method-assign]
    models_repo.write_spec("q2q-claude-v2", active=True, effective_from="2025-07-01")
    models_repo.commit("Add v2")
    daemon.request_pass("sync")

    wait_until(lambda: active_ids(engine) == {"q2q-claude-v2"}, deadline_s=10)
    assert failures["left"] == 0
    assert daemon.state.consecutive_failures == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_sigterm_stops_cleanly(
    models_repo: ModelsRepo, database_url: str, tmp_path: Path
) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.commit("Add a model")
    q2q = str(Path(sys.executable).parent / "q2q")
    process = subprocess.Popen(
        [q2q, "run", "--repo", str(models_repo.root), "--db", database_url,
         "--port", str(free_port()), "--interval", "0.5"],
        stderr=subprocess.PIPE, text=True, env=os.environ | {"Q2Q_LOG_FORMAT": "text"},
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr or []), daemon=True)
    reader.start()
    try:
        wait_until(lambda: any("Pass applied" in line for line in lines), deadline_s=20)
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(timeout=5)

    assert exit_code == 0
    assert any("Received SIGTERM" in line for line in lines)
    assert any("Reconciler stopped" in line for line in lines)
    summary = next(line for line in lines if "Pass applied" in line)
    assert "next pass at" in summary


def test_run_fails_when_port_taken(
    models_repo: ModelsRepo, database_url: str
) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.commit("Add a model")
    q2q = str(Path(sys.executable).parent / "q2q")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        completed = subprocess.run(
            [q2q, "run", "--repo", str(models_repo.root), "--db", database_url,
             "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )

    assert completed.returncode == 1
    assert completed.stderr.endswith(
        f"error: the HTTP API could not listen on 127.0.0.1:{port} (see the error above); "
        "pick a free port with --port or Q2Q_PORT\n"
    )
