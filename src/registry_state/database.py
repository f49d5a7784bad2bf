"""Database engines and schema migrations.

`connect(url)` returns an engine for SQLite (the embedded default) or
PostgreSQL through psycopg 3; `upgrade(engine)` runs the Alembic migrations
shipped in this package; `ensure_schema` is what every command that touches
the database calls first. Connection failures become `StoreUnavailableError`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from registry_state.errors import SchemaOutdatedError, StoreUnavailableError

logger = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "sqlite:///q2q.db"
_MIGRATIONS = Path(__file__).with_name("migrations")


def normalise_url(url: str) -> str:
    """Select psycopg 3 for PostgreSQL URLs that name no driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def connect(url: str) -> sa.Engine:
    """Create an engine; SQLite gets foreign keys, a busy timeout and WAL journaling."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _configure_sqlite)
        sa.event.listen(engine, "begin", _begin_sqlite)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself, so a transaction starts where SQLAlchemy begins one.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


READ_ONLY_OPTION = "q2q_read_only"


def reader(engine: sa.Engine) -> sa.Engine:
    """Return the engine for transactions that only read.

    On SQLite they start with a plain BEGIN, so in WAL mode they read a
    snapshot at once instead of waiting for the write lock of a pass.
    """
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def _begin_sqlite(connection: sa.Connection) -> None:
    # BEGIN IMMEDIATE takes the write lock at the start, so two writers serialise
    # instead of failing on a lock upgrade in the middle of a pass.
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    script = ScriptDirectory(str(_MIGRATIONS))
    head = script.get_current_head()
    assert head is not None, "the package ships no migration"
    return head


def current_revision(engine: sa.Engine) -> str | None:
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except sa.exc.OperationalError as error:
        raise StoreUnavailableError(f"cannot connect to the database: {_reason(error)}") from None


def upgrade(engine: sa.Engine) -> tuple[str | None, str]:
    """Migrate the schema to the newest revision; return (before, after)."""
    before = current_revision(engine)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")
    after = head_revision()
    if before != after:
        logger.info("Upgraded database schema from %s to %s", before or "empty", after)
    return before, after


def stamp(engine: sa.Engine) -> str:
    """Record the newest schema revision without running migrations; return it."""
    with engine.begin() as connection:
        command.stamp(_alembic_config(connection), "head")
    return head_revision()


def ensure_schema(engine: sa.Engine, *, create_if_empty: bool = True) -> None:
    """Check that the schema is current; create it in an empty database.

    A database that has an older schema is not upgraded behind the operator's
    back: the error tells the operator to run `q2q db upgrade`.
    """
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None and create_if_empty and not _has_registry_tables(engine):
        upgrade(engine)
        return
    if current is None and _has_registry_tables(engine):
        raise SchemaOutdatedError(
            "the database has q2q-registry tables but no schema version (alembic_version is "
            "missing or empty), so its schema is unknown; if it matches this version, record "
            "that with 'q2q db stamp', otherwise restore the database or use an empty one"
        )
    if current is not None and not _is_known_revision(current):
        raise SchemaOutdatedError(
            f"the database schema is at revision {current}, which this version of "
            f"q2q-registry does not know (its newest is {head}); the database was migrated "
            "by a newer q2q-registry, so upgrade q2q-registry instead"
        )
    raise SchemaOutdatedError(
        f"the database schema is at revision {current or 'none'} but this version of "
        f"q2q-registry needs {head}; run 'q2q db upgrade'"
    )


def _is_known_revision(revision: str) -> bool:
    script = ScriptDirectory(str(_MIGRATIONS))
    return any(known.revision == revision for known in script.walk_revisions())


def _has_registry_tables(engine: sa.Engine) -> bool:
    with engine.connect() as connection:
        return sa.inspect(connection).has_table("model_registry")


def _reason(error: sa.exc.DBAPIError) -> str:
    return str(error.orig).strip().splitlines()[0] if error.orig else str(error)


def describe(engine: sa.Engine) -> str:
    """Return the engine URL with the password hidden, for logs and messages."""
    return engine.url.render_as_string(hide_password=True)
