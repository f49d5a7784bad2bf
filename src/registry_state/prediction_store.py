"""Write validated predictions in bulk: PostgreSQL COPY, SQLite executemany.

Input: batches of `PredictionRow` tuples and a SQLAlchemy connection inside a
transaction that the caller opened, so an import commits whole or not at all.
Output: how many rows were received and how many were new. A row whose
(request_id, label) is already stored is skipped, which makes a repeated
import or API call idempotent. `q2q predictions import`, `POST /q2q/predictions`,
the tests and the benchmark call `write_predictions`.

Both paths bypass SQLAlchemy's per-row processing, so they must write the same
values the `UTCDateTime` column would: naive UTC text on SQLite and aware
timestamps on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from registry_state.predictions import FIELDS, PredictionRow

_COLUMNS = ", ".join(FIELDS)
_STAGING = "q2q_predictions_staging"
_SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
"""The text SQLAlchemy stores for a DateTime on SQLite; comparisons rely on the same form."""
SQLITE_CACHE_KIB = 65_536
"""Page cache of a SQLite connection while it writes predictions: 64 MiB."""
SQLITE_DEFAULT_CACHE = -2000
"""SQLite's default page cache (about 2 MiB), restored after the write."""


@dataclass(frozen=True)
class WriteResult:
    received: int
    inserted: int

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted


def write_predictions(
    connection: sa.Connection,
    batches: Iterable[Sequence[PredictionRow]],
    *,
    skip_duplicates: bool = True,
) -> WriteResult:
    """Insert every batch in the caller's transaction.

    With `skip_duplicates=False` a stored (request_id, label) pair raises an
    integrity error instead; on PostgreSQL this lets COPY write straight into
    the table, which is what bulk loads of fresh data use.
    """
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        return _write_postgresql(driver, batches, skip_duplicates=skip_duplicates)
    return _write_sqlite(driver, batches, skip_duplicates=skip_duplicates)


def _sqlite_time(value: dt.datetime) -> str:
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    # isoformat with a space and microseconds writes the text of _SQLITE_FORMAT, faster.
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _write_sqlite(
    driver: Any, batches: Iterable[Sequence[PredictionRow]], *, skip_duplicates: bool
) -> WriteResult:
    verb = "INSERT OR IGNORE" if skip_duplicates else "INSERT"
    statement = f"{verb} INTO predictions ({_COLUMNS}) VALUES ({', '.join('?' * len(FIELDS))})"
    received = inserted = 0
    times: dict[dt.datetime, str] = {}
    cursor = driver.cursor()
    # A larger page cache keeps more of the indexes in memory while rows arrive in
    # random key order; it lasts for this connection only.
    cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    try:
        for batch in batches:
            before = driver.total_changes
            values = []
            for row in batch:
                text = times.get(row.created_at)
                if text is None:
                    text = times[row.created_at] = _sqlite_time(row.created_at)
                values.append((row.model_id, row.provider, row.language, row.label, row.score,
                               1 if row.positive else 0, text, row.request_id))
            if len(times) > 100_000:
                times.clear()
            cursor.executemany(statement, values)
            received += len(batch)
            inserted += driver.total_changes - before
    finally:
        cursor.execute(f"PRAGMA cache_size = {SQLITE_DEFAULT_CACHE}")
        cursor.close()
    return WriteResult(received=received, inserted=inserted)


def _write_postgresql(
    driver: Any, batches: Iterable[Sequence[PredictionRow]], *, skip_duplicates: bool
) -> WriteResult:
    received = 0
    with driver.cursor() as cursor:
        if not skip_duplicates:
            with cursor.copy(f"COPY predictions ({_COLUMNS}) FROM STDIN") as copy:
                for batch in batches:
                    for row in batch:
                        copy.write_row(row)
                    received += len(batch)
            return WriteResult(received=received, inserted=received)

        # COPY has no ON CONFLICT, so rows go through a staging table first.
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} (model_id text, provider text, "
            "language text, label text, score double precision, positive boolean, "
            "created_at timestamptz, request_id text) ON COMMIT DROP"
        )
        cursor.execute(f"TRUNCATE {_STAGING}")
        with cursor.copy(f"COPY {_STAGING} ({_COLUMNS}) FROM STDIN") as copy:
            for batch in batches:
                for row in batch:
                    copy.write_row(row)
                received += len(batch)
        cursor.execute(
            f"INSERT INTO predictions ({_COLUMNS}) SELECT {_COLUMNS} FROM {_STAGING} "
            "ON CONFLICT (request_id, label) DO NOTHING"
        )
        inserted = cursor.rowcount
        cursor.execute(f"TRUNCATE {_STAGING}")
    return WriteResult(received=received, inserted=inserted)


def analyze(connection: sa.Connection) -> None:
    """Refresh the planner's statistics after a large import."""
    connection.exec_driver_sql("ANALYZE predictions")
