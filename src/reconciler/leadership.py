"""Leader election among reconciler replicas that share one database.

Exactly one replica runs the scheduled passes. On PostgreSQL the leader holds a
session-level advisory lock on a connection of its own; the server releases it
when that connection closes, so a replica that dies (even by SIGKILL) hands
over as soon as its TCP connection drops. On SQLite the leader holds an
exclusive `flock` on a file beside the database, which the kernel releases when
the process exits. Followers call `try_acquire` once per lease period.
When the database cannot be reached, `try_acquire` raises
`StoreUnavailableError`: no replica can tell who leads then, and the daemon
treats it as a failed pass that it retries with backoff.

Passes themselves are also serialised by a transaction-level lock (see
`registry_state.store.lock_status`), so a pass started by a webhook on a
follower, or by `q2q apply` run by hand, waits for the pass in flight.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO, Protocol

import sqlalchemy as sa

from registry_state.errors import StoreUnavailableError

logger = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x51325140  # differs from the per-pass lock key in registry_state.store


class LeaderLock(Protocol):
    def try_acquire(self) -> bool:
        """Return True while this replica leads; raise `StoreUnavailableError` when the
        database that holds the lock cannot be reached."""
        ...

    def is_held(self) -> bool: ...
    def release(self) -> None: ...


class PostgresLeaderLock:
    """A session-level advisory lock held on a dedicated connection."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._connection: sa.Connection | None = None

    def try_acquire(self) -> bool:
        if self.is_held():
            return True
        self.release()
        connection: sa.Connection | None = None
        try:
            connection = self._engine.connect()
            acquired = bool(connection.execute(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK_KEY}
            ).scalar_one())
            connection.commit()
        except sa.exc.DBAPIError as error:
            if connection is not None:
                connection.close()
            reason = str(error.orig or error).strip().splitlines()[0]
            raise StoreUnavailableError(f"cannot take the leader lock: {reason}") from None
        if acquired:
            self._connection = connection
        else:
            connection.close()
        return acquired

    def is_held(self) -> bool:
        """Check that the lock's connection is still alive, which means the lock is held."""
        if self._connection is None:
            return False
        try:
            self._connection.execute(sa.text("SELECT 1"))
            self._connection.commit()
            return True
        except sa.exc.DBAPIError:
            logger.warning("Lost the connection that holds the leader lock")
            self._discard()
            return False

    def release(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.execute(
                sa.text("SELECT pg_advisory_unlock(:key)"), {"key": LEADER_LOCK_KEY}
            )
            self._connection.commit()
        except sa.exc.DBAPIError:
            pass  # The server drops the lock with the connection anyway.
        self._discard()

    def _discard(self) -> None:
        if self._connection is not None:
            try:
                self._connection.invalidate()
                self._connection.close()
            except sa.exc.SQLAlchemyError:
                pass
        self._connection = None


class FileLeaderLock:
    """An exclusive `flock` on a file beside the SQLite database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def try_acquire(self) -> bool:
        if self._file is not None:
            return True
        handle = open(self.path, "ab")  # noqa: SIM115 - held open while leading
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
        self._file = handle
        return True

    def is_held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def leader_lock_for(engine: sa.Engine) -> LeaderLock:
    if engine.dialect.name == "postgresql":
        return PostgresLeaderLock(engine)
    database = engine.url.database
    if not database or database == ":memory:":
        raise ValueError("an in-memory SQLite database cannot be shared by replicas")
    return FileLeaderLock(Path(f"{database}.leader.lock"))
