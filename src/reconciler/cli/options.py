"""Options shared by the `q2q` commands, and the objects they build.

Each option also reads a `Q2Q_*` environment variable, so a deployment sets
them once. Secrets never come from options or YAML.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import sqlalchemy as sa

from reconciler.git_source import GitSource
from reconciler.reconcile import ReconcileOptions, Reconciler, default_instance
from registry_state import database

F = TypeVar("F", bound=Callable[..., Any])


def db_option(function: F) -> F:
    return click.option(
        "--db",
        "database_url",
        envvar="Q2Q_DATABASE_URL",
        default=database.DEFAULT_DATABASE_URL,
        show_default=True,
        help="Database URL: sqlite:///PATH or postgresql://USER@HOST/NAME [env: Q2Q_DATABASE_URL].",
    )(function)


def source_options(function: F) -> F:
    options = [
        click.option(
            "--repo",
            envvar="Q2Q_REPO",
            default=".",
            show_default=True,
            help="Models repository: a local path or a URL to clone [env: Q2Q_REPO].",
        ),
        click.option(
            "--branch",
            envvar="Q2Q_BRANCH",
            default=None,
            help="Branch to reconcile [default: the checked-out or remote default branch; "
            "env: Q2Q_BRANCH].",
        ),
        click.option(
            "--path",
            "spec_dir",
            envvar="Q2Q_PATH",
            default="models",
            show_default=True,
            help="Spec directory inside the repository; registry.yaml is read beside it "
            "[env: Q2Q_PATH].",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def format_option(*choices: str) -> Callable[[F], F]:
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        help=f"Output format: {', '.join(choices)} (text is for people).",
    )


def open_engine(database_url: str) -> sa.Engine:
    engine = database.connect(database_url)
    database.ensure_schema(engine)
    return engine


def build_reconciler(
    *,
    repo: str,
    branch: str | None,
    spec_dir: str,
    database_url: str,
    allow_mass_retire: bool = False,
) -> Reconciler:
    engine = open_engine(database_url)
    source = GitSource(repo, branch=branch)
    options = ReconcileOptions(
        spec_dir=spec_dir.strip("/") or ".",
        instance=f"cli@{default_instance()}",
        allow_mass_retire=allow_mass_retire,
    )
    return Reconciler(engine, source, options=options)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
