"""A throwaway PostgreSQL server for the benchmarks, on 127.0.0.1 and a free port.

Uses initdb and pg_ctl from PATH, /usr/local/bin or /usr/lib/postgresql/*/bin.
When the benchmark runs as root, the server runs as the `postgres` user through
`runuser`, because PostgreSQL refuses to run as root. Durability settings are
left at their defaults, so the numbers are those of a normal installation.

    with TemporaryServer() as server:
        server.admin_url   # postgresql://postgres@127.0.0.1:PORT/postgres
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

SERVER_USER = "postgres"


def _bin_dir() -> Path:
    found = shutil.which("initdb")
    candidates = [Path(found).parent] if found else []
    candidates.append(Path("/usr/local/bin"))
    candidates += [Path(p).parent for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))]
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise RuntimeError("initdb and pg_ctl not found; install PostgreSQL server binaries")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class TemporaryServer:
    def __init__(self) -> None:
        # The server user must be able to enter this directory, so it is created
        # directly under /tmp rather than inside the benchmark's private temp dir.
        self.root = Path(tempfile.mkdtemp(prefix="q2q-bench-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.bin = _bin_dir()
        self.port = 0
        self.running = False

    @property
    def admin_url(self) -> str:
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *arguments: str) -> str:
        command = [str(self.bin / program), *arguments]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {(result.stderr or result.stdout).strip()}")
        return result.stdout

    def version(self) -> str:
        return self._run("postgres", "--version").strip()

    def start(self) -> None:
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self._run(
            "initdb",
            f"--pgdata={self.data}",
            f"--username={SERVER_USER}",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
        )
        self.port = _free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root}"
        self._run(
            "pg_ctl",
            "start",
            f"--pgdata={self.data}",
            f"--log={self.log}",
            f"--options={options}",
            "--wait",
            "--timeout=60",
        )
        self.running = True

    def stop(self) -> None:
        if self.running:
            self._run("pg_ctl", "stop", f"--pgdata={self.data}", "--mode=fast", "--wait")
            self.running = False

    def close(self) -> None:
        """Stop the server if it runs and remove its directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TemporaryServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
