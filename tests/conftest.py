"""Database fixtures: every test that takes `database_url` or `engine` runs twice.

The `sqlite` case uses a file in the test's tmp_path. The `postgresql` case
uses a new database on a PostgreSQL server that this file starts once per
session with initdb and pg_ctl, or on the server named by the environment
variable Q2Q_TEST_POSTGRESQL_URL (a superuser URL, for example a CI service).

When no server can be had, the `postgresql` cases are skipped with the reason.
With Q2Q_REQUIRE_POSTGRESQL=1 a run that skipped any test marked `postgresql`
exits non-zero, so CI cannot pass on SQLite alone.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from registry_state import database

EXTERNAL_URL_VARIABLE = "Q2Q_TEST_POSTGRESQL_URL"
REQUIRE_VARIABLE = "Q2Q_REQUIRE_POSTGRESQL"
POSTGRESQL_MARK = "postgresql"

# The PostgreSQL server exits when started as root, so a root test run starts it as this user.
SERVER_USER = "postgres"
SUPERUSER = "postgres"
STARTUP_ATTEMPTS = 3
COMMAND_TIMEOUT_SECONDS = 120


def postgresql_required() -> bool:
    return os.environ.get(REQUIRE_VARIABLE, "") == "1"


@dataclass(frozen=True)
class PostgresqlServer:
    """A reachable server, or the reason why none is available."""

    admin_url: sa.URL | None
    unavailable_reason: str = ""

    def url_for(self, name: str) -> str:
        assert self.admin_url is not None
        return self.admin_url.set(database=name).render_as_string(hide_password=False)


# --- starting a private server -------------------------------------------------------------


def find_postgresql_bin_dir() -> Path | None:
    """Return the directory that contains initdb and pg_ctl, preferring PATH."""
    on_path = shutil.which("initdb")
    if on_path is not None:
        bin_dir = Path(on_path).resolve().parent
        if (bin_dir / "pg_ctl").exists():
            return bin_dir
    # Debian and Ubuntu install the server binaries outside PATH, one folder a version.
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    candidates.sort(key=lambda path: _version_key(Path(path).parent.parent.name), reverse=True)
    for candidate in candidates:
        bin_dir = Path(candidate).parent
        if (bin_dir / "pg_ctl").exists():
            return bin_dir
    return None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServerCommandError(Exception):
    """An initdb or pg_ctl command failed; the message contains its output."""


class PrivateServer:
    """A throwaway PostgreSQL cluster in a temporary directory, listening on loopback only."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="q2q-pg-"))
        self.data_dir = self.root / "data"
        self.log_file = self.root / "server.log"
        self.port = 0
        self.started = False

    def _command(self, program: str, *arguments: str) -> list[str]:
        command = [str(self.bin_dir / program), *arguments]
        if self.as_root:
            return ["runuser", "-u", SERVER_USER, "--", *command]
        return command

    def _run(self, program: str, *arguments: str) -> None:
        command = self._command(program, *arguments)
        try:
            result = subprocess.run(
                command,
                cwd=self.root,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ServerCommandError(f"{program} failed: {error}") from None
        if result.returncode != 0:
            # Skip reasons are shown one per line, so the output is joined into one.
            lines = (result.stderr or result.stdout).splitlines()
            output = " / ".join(line.strip() for line in lines if line.strip())
            raise ServerCommandError(f"{program} exited with {result.returncode}: {output}")

    def start(self) -> None:
        if self.as_root:
            try:
                account = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise ServerCommandError(
                    f"tests run as root, and PostgreSQL needs a non-root user "
                    f"'{SERVER_USER}' to run as, but that user does not exist"
                ) from None
            os.chown(self.root, account.pw_uid, account.pw_gid)

        self._run(
            "initdb",
            f"--pgdata={self.data_dir}",
            f"--username={SUPERUSER}",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        # Another process may take the chosen port before the server binds it, so retry.
        last_error: ServerCommandError | None = None
        for _attempt in range(STARTUP_ATTEMPTS):
            self.port = _free_loopback_port()
            self._write_settings()
            try:
                self._run(
                    "pg_ctl",
                    "start",
                    f"--pgdata={self.data_dir}",
                    f"--log={self.log_file}",
                    "--wait",
                    "--timeout=60",
                )
            except ServerCommandError as error:
                last_error = error
                continue
            self.started = True
            return
        log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        raise ServerCommandError(f"{last_error}; server log tail: {log[-2000:]}")

    def _write_settings(self) -> None:
        # postgresql.auto.conf is read after postgresql.conf, and a rewrite on retry
        # replaces the previous port. Durability settings are off because a test
        # cluster is thrown away.
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        lines = [f"{name} = '{value}'" for name, value in settings.items()]
        (self.data_dir / "postgresql.auto.conf").write_text("\n".join(lines) + "\n")

    def stop(self) -> None:
        if self.started:
            try:
                self._run("pg_ctl", "stop", f"--pgdata={self.data_dir}", "--mode=fast", "--wait")
            except ServerCommandError:
                self._run("pg_ctl", "stop", f"--pgdata={self.data_dir}", "--mode=immediate")
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def admin_url(self) -> sa.URL:
        return sa.make_url(f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres")


def stop_on_sigterm(server: PrivateServer) -> Callable[[], None]:
    """Stop the server if SIGTERM ends pytest, and return a function that undoes this.

    SIGTERM (as sent by `timeout`) ends pytest without fixture teardown, which
    would leave the server running and its directory behind.
    """
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL or threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handle(signum: int, _frame: FrameType | None) -> None:
        signal.signal(signum, signal.SIG_DFL)
        try:
            server.stop()
        finally:
            os.kill(os.getpid(), signum)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    signal.signal(signal.SIGTERM, handle)
    return restore


# --- choosing the server for the session ---------------------------------------------------


def _admin_conninfo(admin_url: sa.URL) -> str:
    # psycopg takes a libpq URL, which has no "+driver" part.
    return admin_url.set(drivername="postgresql").render_as_string(hide_password=False)


def _check_connection(admin_url: sa.URL) -> str:
    """Return an empty string if the server accepts a connection, else the error."""
    try:
        with psycopg.connect(_admin_conninfo(admin_url), connect_timeout=10) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        return str(error).strip()
    return ""


def _external_server(url: str) -> PostgresqlServer:
    try:
        admin_url = sa.make_url(url)
    except sa.exc.ArgumentError as error:
        return PostgresqlServer(None, f"{EXTERNAL_URL_VARIABLE} is not a valid URL: {error}")
    display_url = admin_url.render_as_string(hide_password=True)
    problem = _check_connection(admin_url)
    if problem:
        return PostgresqlServer(
            None, f"cannot connect to {display_url} from {EXTERNAL_URL_VARIABLE}: {problem}"
        )
    return PostgresqlServer(admin_url)


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgresqlServer]:
    """Yield the session's PostgreSQL server, or a record of why there is none."""
    external_url = os.environ.get(EXTERNAL_URL_VARIABLE)
    if external_url:
        yield _external_server(external_url)
        return

    bin_dir = find_postgresql_bin_dir()
    if bin_dir is None:
        yield PostgresqlServer(
            None,
            "initdb was not found in PATH or /usr/lib/postgresql/*/bin; install the "
            f"PostgreSQL server or set {EXTERNAL_URL_VARIABLE}",
        )
        return

    server = PrivateServer(bin_dir)
    restore_sigterm = stop_on_sigterm(server)
    try:
        try:
            server.start()
        except ServerCommandError as error:
            yield PostgresqlServer(None, f"could not start PostgreSQL from {bin_dir}: {error}")
            return
        problem = _check_connection(server.admin_url)
        if problem:
            yield PostgresqlServer(None, f"PostgreSQL started but rejects connections: {problem}")
            return
        yield PostgresqlServer(server.admin_url)
    finally:
        server.stop()
        restore_sigterm()


_database_numbers = itertools.count(1)


def _create_database(admin_url: sa.URL) -> str:
    with psycopg.connect(_admin_conninfo(admin_url), autocommit=True) as connection:
        # A shared server such as Q2Q_TEST_POSTGRESQL_URL may keep names from an earlier run.
        while True:
            name = f"q2q_test_{next(_database_numbers)}"
            try:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                continue
            return name


def _drop_database(admin_url: sa.URL, name: str) -> None:
    with psycopg.connect(_admin_conninfo(admin_url), autocommit=True) as connection:
        # FORCE (PostgreSQL 13 and later) ends connections that a test left open.
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# --- fixtures for tests --------------------------------------------------------------------


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of a new, empty database: a SQLite file or a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'q2q.db'}"
        return

    server: PostgresqlServer = request.getfixturevalue("postgresql_server")
    if server.admin_url is None:
        pytest.skip(f"PostgreSQL is not available: {server.unavailable_reason}")
    name = _create_database(server.admin_url)
    try:
        yield server.url_for(name)
    finally:
        _drop_database(server.admin_url, name)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """Yield an engine on a new database that has the current schema."""
    new_engine = database.connect(database_url)
    try:
        database.upgrade(new_engine)
        yield new_engine
    finally:
        new_engine.dispose()


# --- turning skipped PostgreSQL tests into a failed run ------------------------------------

_postgresql_test_ids: set[str] = set()
_skipped_postgresql_tests: list[tuple[str, str]] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Keywords also hold folder and file names, so the marker itself is checked here.
    _postgresql_test_ids.update(
        item.nodeid for item in items if item.get_closest_marker(POSTGRESQL_MARK) is not None
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # An expected failure (xfail) is reported as skipped too, but it did run.
    ran_as_xfail = hasattr(report, "wasxfail")
    if report.skipped and not ran_as_xfail and report.nodeid in _postgresql_test_ids:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped_postgresql_tests.append((report.nodeid, reason))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if postgresql_required() and _skipped_postgresql_tests and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not (postgresql_required() and _skipped_postgresql_tests):
        return
    count = len(_skipped_postgresql_tests)
    terminalreporter.section("PostgreSQL required", sep="=", red=True, bold=True)
    terminalreporter.line(
        f"{REQUIRE_VARIABLE}=1 is set, but {count} test(s) marked '{POSTGRESQL_MARK}' "
        "were skipped, so this run fails. Install the PostgreSQL server (initdb and "
        f"pg_ctl) or set {EXTERNAL_URL_VARIABLE}.",
        red=True,
    )
    reasons = sorted({reason for _nodeid, reason in _skipped_postgresql_tests})
    for reason in reasons:
        terminalreporter.line(f"  skip reason: {reason}")
    for nodeid, _reason in _skipped_postgresql_tests[:5]:
        terminalreporter.line(f"  skipped: {nodeid}")
    if count > 5:
        terminalreporter.line(f"  ... and {count - 5} more")
