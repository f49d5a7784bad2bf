"""Schema, constraints and migrations of registry_state.database, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from registry_state import database
from registry_state.errors import SchemaOutdatedError, StoreUnavailableError
from registry_state.schema import metadata
from registry_state.tables import model_registry, reconciler_status

EFFECTIVE_FROM = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def model_row(model_id: str, provider: str, *, active: bool) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "model_id": model_id,
        "provider": provider,
        "model_name": f"{provider}-model",
        "prompt_version": "v1",
        "thresholds": {"confidence": 0.8},
        "effective_from": EFFECTIVE_FROM,
        "active": active,
    }


def insert_model(engine: sa.Engine, model_id: str, provider: str, *, active: bool) -> None:
    # One transaction per row, because a failed statement aborts a PostgreSQL transaction.
    with engine.begin() as connection:
        connection.execute(model_registry.insert(), model_row(model_id, provider, active=active))


def active_model_ids(engine: sa.Engine) -> list[str]:
    query = (
        sa.select(model_registry.c.model_id)
        .where(model_registry.c.active)
        .order_by(model_registry.c.model_id)
    )
    with engine.connect() as connection:
        return list(connection.scalars(query))


@pytest.fixture
def bare_engine(database_url: str) -> Iterator[sa.Engine]:
    """Yield an engine on a database that has no tables yet."""
    new_engine = database.connect(database_url)
    yield new_engine
    new_engine.dispose()


# --- migrations ----------------------------------------------------------------------------


def test_migrations_match_metadata(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "compare_server_default": True},
        )
        differences = compare_metadata(context, metadata)

    assert differences == []


def test_migrations_reach_head(engine: sa.Engine) -> None:
    assert database.current_revision(engine) == database.head_revision()


def test_upgrade_twice_is_noop(engine: sa.Engine) -> None:
    head = database.head_revision()

    before, after = database.upgrade(engine)

    assert before == head
    assert after == head


# --- one active model per provider ---------------------------------------------------------


def test_one_active_second_active_rejected(engine: sa.Engine) -> None:
    insert_model(engine, "openai-a", "openai", active=True)

    with pytest.raises(sa.exc.IntegrityError):
        insert_model(engine, "openai-b", "openai", active=True)

    assert active_model_ids(engine) == ["openai-a"]


def test_one_active_per_provider_allowed(engine: sa.Engine) -> None:
    insert_model(engine, "openai-a", "openai", active=True)
    insert_model(engine, "anthropic-a", "anthropic", active=True)

    assert active_model_ids(engine) == ["anthropic-a", "openai-a"]


def test_one_active_inactive_rows_allowed(engine: sa.Engine) -> None:
    insert_model(engine, "openai-a", "openai", active=True)
    insert_model(engine, "openai-b", "openai", active=False)
    insert_model(engine, "openai-c", "openai", active=False)
    insert_model(engine, "anthropic-a", "anthropic", active=False)
    insert_model(engine, "anthropic-b", "anthropic", active=False)

    with engine.connect() as connection:
        total = connection.scalar(sa.select(sa.func.count()).select_from(model_registry))
    assert total == 5
    assert active_model_ids(engine) == ["openai-a"]


def test_one_active_update_rejected(engine: sa.Engine) -> None:
    insert_model(engine, "openai-a", "openai", active=True)
    insert_model(engine, "openai-b", "openai", active=False)
    activate_b = (
        model_registry.update().where(model_registry.c.model_id == "openai-b").values(active=True)
    )

    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(activate_b)

    assert active_model_ids(engine) == ["openai-a"]


def test_one_active_switch_in_transaction(engine: sa.Engine) -> None:
    insert_model(engine, "openai-a", "openai", active=True)
    insert_model(engine, "openai-b", "openai", active=False)
    by_id = model_registry.c.model_id

    with engine.begin() as connection:
        connection.execute(model_registry.update().where(by_id == "openai-a").values(active=False))
        connection.execute(model_registry.update().where(by_id == "openai-b").values(active=True))

    assert active_model_ids(engine) == ["openai-b"]


# --- UTCDateTime ---------------------------------------------------------------------------

PLUS_TWO = dt.timezone(dt.timedelta(hours=2))
MINUS_FIVE_THIRTY = dt.timezone(-dt.timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    "written",
    [
        pytest.param(dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC), id="utc"),
        pytest.param(dt.datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=dt.UTC), id="microseconds"),
        pytest.param(dt.datetime(1970, 1, 1, tzinfo=dt.UTC), id="epoch"),
        pytest.param(dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC), id="max"),
        pytest.param(dt.datetime(2026, 3, 29, 3, 30, tzinfo=PLUS_TWO), id="plus-two"),
        pytest.param(dt.datetime(2025, 12, 31, 20, 0, tzinfo=MINUS_FIVE_THIRTY), id="minus-5h30"),
    ],
)
def test_utc_datetime_round_trip(engine: sa.Engine, written: dt.datetime) -> None:
    with engine.begin() as connection:
        connection.execute(reconciler_status.insert(), {"name": "main", "last_applied_at": written})
    with engine.connect() as connection:
        read = connection.scalar(sa.select(reconciler_status.c.last_applied_at))

    assert read == written
    assert read is not None
    assert read.utcoffset() == dt.timedelta(0)
    assert read.replace(tzinfo=None) == written.astimezone(dt.UTC).replace(tzinfo=None)


def test_utc_datetime_null_round_trip(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(reconciler_status.insert(), {"name": "main", "last_applied_at": None})
    with engine.connect() as connection:
        read = connection.scalar(sa.select(reconciler_status.c.last_applied_at))

    assert read is None


def test_utc_datetime_naive_rejected(engine: sa.Engine) -> None:
    naive = dt.datetime(2026, 3, 29, 1, 30)

    with pytest.raises(sa.exc.StatementError) as raised, engine.begin() as connection:
        connection.execute(reconciler_status.insert(), {"name": "main", "last_applied_at": naive})

    assert isinstance(raised.value.orig, ValueError)
    assert "naive datetime" in str(raised.value.orig)
    with engine.connect() as connection:
        count = connection.scalar(sa.select(sa.func.count()).select_from(reconciler_status))
    assert count == 0


def test_utc_datetime_naive_filter_rejected(engine: sa.Engine) -> None:
    naive = dt.datetime(2026, 3, 29, 1, 30)
    query = sa.select(reconciler_status.c.name).where(reconciler_status.c.last_applied_at < naive)

    with pytest.raises(sa.exc.StatementError) as raised, engine.connect() as connection:
        connection.execute(query)

    assert isinstance(raised.value.orig, ValueError)


def test_utc_datetime_server_default_is_utc(engine: sa.Engine) -> None:
    # SQLite's CURRENT_TIMESTAMP is UTC text without an offset, and PostgreSQL's now()
    # is a timestamptz: both must read back as the current instant.
    before = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=1)
    insert_model(engine, "openai-a", "openai", active=False)
    after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)

    with engine.connect() as connection:
        created_at = connection.scalar(sa.select(model_registry.c.created_at))

    assert created_at is not None
    assert created_at.utcoffset() == dt.timedelta(0)
    assert before <= created_at <= after


# --- ensure_schema -------------------------------------------------------------------------


def table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_ensure_schema_creates_empty(bare_engine: sa.Engine) -> None:
    assert database.current_revision(bare_engine) is None

    database.ensure_schema(bare_engine)

    assert database.current_revision(bare_engine) == database.head_revision()
    assert table_names(bare_engine) == set(metadata.tables) | {"alembic_version"}


def test_ensure_schema_empty_without_create(bare_engine: sa.Engine) -> None:
    with pytest.raises(SchemaOutdatedError, match="revision none"):
        database.ensure_schema(bare_engine, create_if_empty=False)

    assert table_names(bare_engine) == set()


def test_ensure_schema_current_is_noop(engine: sa.Engine) -> None:
    insert_model(engine, "openai-a", "openai", active=True)

    database.ensure_schema(engine)

    assert active_model_ids(engine) == ["openai-a"]


def test_ensure_schema_older_revision(engine: sa.Engine) -> None:
    assert database.head_revision() != "0001"
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))

    with pytest.raises(SchemaOutdatedError) as raised:
        database.ensure_schema(engine)

    message = str(raised.value)
    assert "at revision 0001" in message
    assert database.head_revision() in message
    assert "run 'q2q db upgrade'" in message


def test_ensure_schema_newer_revision(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))

    with pytest.raises(SchemaOutdatedError) as raised:
        database.ensure_schema(engine)

    message = str(raised.value)
    assert "at revision 9999, which this version of q2q-registry does not know" in message
    assert "upgrade q2q-registry instead" in message


def test_ensure_schema_tables_without_version(engine: sa.Engine) -> None:
    # Tables exist but the version row is gone, as after a restore that skipped
    # alembic_version: the schema must not be created a second time over them.
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM alembic_version"))
    insert_model(engine, "openai-a", "openai", active=True)

    with pytest.raises(SchemaOutdatedError):
        database.ensure_schema(engine)

    assert active_model_ids(engine) == ["openai-a"]


def test_ensure_schema_unreachable(database_url: str) -> None:
    url = sa.make_url(database.normalise_url(database_url))
    if url.get_backend_name() == "sqlite":
        missing = url.set(database=f"{url.database}-missing-dir/q2q.db")
    else:
        missing = url.set(database=f"{url.database}_missing")
    unreachable = database.connect(missing.render_as_string(hide_password=False))

    try:
        with pytest.raises(StoreUnavailableError, match="cannot connect"):
            database.ensure_schema(unreachable)
    finally:
        unreachable.dispose()
