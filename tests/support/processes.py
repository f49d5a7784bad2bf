"""Run `q2q` commands as real processes, and wait for conditions with a deadline.

`ReconcilerProcess` starts `q2q run` (the console script of the running
virtual environment) with its log in a file, talks to its HTTP API on
loopback and stops or kills it. `run_q2q` runs one command to its end.
`fork_q2q` runs a command in a child forked from the test process, which has
already imported the package. The child skips the second or more of imports
that the console script spends before it touches git or the database, so a
test that kills commands at random times can afford many of them. `wait_for`
polls a condition until it is true or a deadline passes, so tests never sleep
to order events.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from reconciler.cli.main import COMMANDS
from reconciler.cli.main import main as q2q_main

Q2Q = Path(sys.executable).parent / "q2q"
LOOPBACK = "127.0.0.1"

T = TypeVar("T")


class ConditionTimeout(AssertionError):
    """A condition did not hold before its deadline."""


def wait_for(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    waiting_for: str,
    interval: float = 0.05,
    describe: Callable[[], str] | None = None,
) -> T:
    """Return the first truthy value of `condition`, polling until `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f"; {describe()}" if describe else ""
            raise ConditionTimeout(
                f"timed out after {timeout:.1f}s waiting for {waiting_for}{detail}"
            )
        time.sleep(interval)


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on at the moment."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def q2q_environment(**extra: str) -> dict[str, str]:
    """Return the environment for a `q2q` process: no inherited Q2Q_* settings."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("Q2Q_")}
    environment.update(extra)
    return environment


class ReconcilerProcess:
    """One `q2q run` process on a loopback port, with its log in `log_path`."""

    def __init__(
        self,
        *,
        repo: Path,
        database_url: str,
        log_path: Path,
        interval: float = 1.0,
        lease: float = 1.0,
        extra_arguments: Sequence[str] = (),
    ) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.arguments = [
            str(Q2Q), "run", "--repo", str(repo), "--db", database_url,
            "--host", LOOPBACK, "--port", str(self.port),
            "--interval", str(interval), "--lease", str(lease), *extra_arguments,
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=f"http://{LOOPBACK}:{self.port}", timeout=5.0)

    def __repr__(self) -> str:
        pid = self.process.pid if self.process else None
        return f"<q2q run pid={pid} port={self.port}>"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> ReconcilerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.arguments, stdout=log, stderr=subprocess.STDOUT,
                env=q2q_environment(), start_new_session=True,
            )
        return self

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return "log tail:\n" + "\n".join(self.log_text().splitlines()[-lines:])

    def get(self, path: str) -> httpx.Response | None:
        """Return the response to GET `path`, or None when the process does not respond."""
        try:
            return self.client.get(path)
        except httpx.TransportError:
            return None

    def post(self, path: str, *, timeout: float = 30.0) -> httpx.Response | None:
        try:
            return self.client.post(path, timeout=timeout)
        except httpx.TransportError:
            return None

    def status(self) -> dict[str, Any] | None:
        """Return the body of GET /q2q/registry/status, or None unless the status is 200."""
        response = self.get("/q2q/registry/status")
        if response is None or response.status_code != 200:
            return None
        document: dict[str, Any] = response.json()
        return document

    def wait_serving(self, *, timeout: float = 30.0) -> None:
        def answers() -> bool:
            if not self.is_running():
                raise AssertionError(f"{self} exited early; {self.log_tail()}")
            response = self.get("/healthz")
            return response is not None and response.status_code == 200

        wait_for(answers, timeout=timeout, waiting_for=f"{self} to serve /healthz",
                 describe=self.log_tail)

    def wait_applied(self, revision: str, *, timeout: float) -> dict[str, Any]:
        """Wait until the status reports `revision` as last applied; return the status."""
        def applied() -> dict[str, Any] | None:
            status = self.status()
            if status and status["lastAppliedRevision"] == revision:
                return status
            return None

        return wait_for(applied, timeout=timeout, waiting_for=f"{self} to apply {revision[:12]}",
                        describe=self.log_tail)

    def close(self) -> None:
        """SIGKILL the process if it still runs, and close the HTTP client."""
        self.kill()
        self.client.close()

    def kill(self) -> None:
        """SIGKILL the process and reap it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, *, timeout: float = 15.0) -> int | None:
        """SIGTERM the process (the pass in flight finishes), SIGKILL it after `timeout`."""
        self.client.close()
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode


def run_q2q(*arguments: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run the `q2q` console script to its end and return its output."""
    return subprocess.run(
        [str(Q2Q), *arguments], capture_output=True, text=True, timeout=timeout,
        env=q2q_environment(), check=False,
    )


def _q2q_in_child(arguments: Sequence[str], log_path: Path) -> None:
    # Runs in the forked child. Output and logs go to the log file rather than
    # to the test's captured streams, and `main` is the console script's entry point.
    stream = log_path.open("a", buffering=1)
    os.dup2(stream.fileno(), 1)
    os.dup2(stream.fileno(), 2)
    sys.stdout = sys.stderr = stream
    logging.getLogger().handlers.clear()
    sys.argv = ["q2q", *arguments]
    q2q_main()


def fork_q2q(*arguments: str, log_path: Path) -> multiprocessing.context.ForkProcess:
    """Start `q2q ARGUMENTS` in a forked child; `kill()` sends it SIGKILL."""
    # `q2q` imports a command's module when the command runs; import it here once,
    # so that every child inherits it instead of importing it again.
    command = next((argument for argument in arguments if argument in COMMANDS), None)
    if command is not None:
        importlib.import_module(COMMANDS[command][0])
    child = multiprocessing.get_context("fork").Process(
        target=_q2q_in_child, args=(arguments, log_path), name="q2q " + " ".join(arguments[:1]),
    )
    child.start()
    return child
