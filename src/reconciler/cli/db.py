"""`q2q db upgrade`, `current` and `stamp`: manage the database schema with Alembic."""

from __future__ import annotations

import click

from reconciler.cli.options import db_option
from registry_state import database


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command()
@db_option
def upgrade(database_url: str) -> None:
    """Migrate the database schema to the newest revision."""
    engine = database.connect(database_url)
    before, after = database.upgrade(engine)
    where = database.describe(engine)
    if before == after:
        click.echo(f"{where}: schema already at revision {after}")
    else:
        click.echo(f"{where}: schema upgraded from {before or 'empty'} to {after}")


@db.command()
@db_option
def current(database_url: str) -> None:
    """Print the schema revision of the database and the newest one available."""
    engine = database.connect(database_url)
    click.echo(f"current: {database.current_revision(engine) or 'empty'}")
    click.echo(f"newest:  {database.head_revision()}")


@db.command()
@db_option
def stamp(database_url: str) -> None:
    """Record the newest schema revision without migrating.

    Only for a database whose tables already match this version, such as one
    restored from a backup without its alembic_version table.
    """
    engine = database.connect(database_url)
    revision = database.stamp(engine)
    click.echo(f"{database.describe(engine)}: schema recorded as revision {revision}")
