"""A PostgreSQL server of a test's own, which the test may stop and start again.

The session server of tests/conftest.py is shared by every database test, so a
test that takes the database away starts a second server with the same
`PrivateServer` class and stops it with `pg_ctl stop -m fast`. The server keeps
its data directory and port across a restart.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg

PG_CTL_TIMEOUT_SECONDS = 60


def _root_conftest() -> ModuleType:
    # pytest registers every conftest.py under the module name "conftest", so the
    # one at the top of tests/ is loaded here by path under a name of its own.
    name = "q2q_tests_root_conftest"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


class StoppableServer:
    """A private PostgreSQL cluster with `stop_server` and `start_server`."""

    def __init__(self) -> None:
        conftest = _root_conftest()
        bin_dir = conftest.find_postgresql_bin_dir()
        if bin_dir is None:
            raise RuntimeError("initdb was not found in PATH or /usr/lib/postgresql/*/bin")
        self._server: Any = conftest.PrivateServer(bin_dir)
        self.running = False

    def start(self) -> StoppableServer:
        self._server.start()
        self.running = True
        return self

    @property
    def url(self) -> str:
        """The superuser URL of the `postgres` database on this server."""
        return str(self._server.admin_url.render_as_string(hide_password=False))

    @property
    def log_file(self) -> Path:
        path: Path = self._server.log_file
        return path

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def _pg_ctl(self, *arguments: str) -> None:
        server = self._server
        command = [str(server.bin_dir / "pg_ctl"), *arguments, f"--pgdata={server.data_dir}"]
        if server.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False,
                                timeout=PG_CTL_TIMEOUT_SECONDS, cwd=server.root)
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl {arguments[0]} exited with {result.returncode}: "
                               f"{(result.stderr or result.stdout).strip()}")

    def stop_server(self) -> None:
        """Stop the server: `pg_ctl stop -m fast` ends every session and waits."""
        self._pg_ctl("stop", "--mode=fast", "--wait")
        self.running = False

    def start_server(self) -> None:
        """Start the stopped server again on the same port and data directory."""
        self._pg_ctl("start", f"--log={self._server.log_file}", "--wait", "--timeout=60")
        self.running = True

    def close(self) -> None:
        """Stop the server if it runs and delete its files."""
        # PrivateServer.stop runs pg_ctl stop only for a server it believes started.
        self._server.started = self.running
        self._server.stop()
