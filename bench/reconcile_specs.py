"""Reconcile passes over a generated repository: first apply, unchanged, one-file change.

For each trial: a fresh database and a fresh `Reconciler` over a freshly
reset repository; then, with the same `Reconciler` object,

1. the first full apply (every spec created),
2. passes over the unchanged revision (files parsed, SQL statements, time),
3. a pass after one commit that edits one spec's description.

Each pass is timed by wall clock and by this process's CPU time
(`time.process_time`). The CPU time leaves out the git and PostgreSQL
processes, but other load on the machine disturbs it less.

SQL statements are counted with SQLAlchemy's `before_cursor_execute` event on
the engine, so they are the statements SQLAlchemy sends through a connection
(BEGIN IMMEDIATE on SQLite included; the driver's own COMMIT and the pool's
pre-ping are not).

    python -m bench.reconcile_specs --specs 1000 --specs 10000
    python -m bench.reconcile_specs --specs 10000 --database postgresql
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.generate import base_revision, edit_one, generate, git
from bench.measure import median
from reconciler.git_source import GitSource
from reconciler.reconcile import PassResult, ReconcileOptions, Reconciler
from registry_state import database

UNCHANGED_PASSES = 3


@dataclass
class StatementCounter:
    """Count (and keep the text of) the statements an engine sends to its cursors."""

    engine: sa.Engine
    statements: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        sa.event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements.append(" ".join(statement.split()))

    def take(self) -> list[str]:
        """Return the statements seen since the last call and start a new list."""
        statements, self.statements = self.statements, []
        return statements


@dataclass
class Trial:
    specs: int
    database: str
    first_apply_s: float
    first_apply_cpu_s: float
    first_apply_status: str
    first_apply_changes: int
    first_apply_statements: int
    unchanged_s: list[float]
    unchanged_cpu_s: list[float]
    unchanged_files_parsed: list[int]
    unchanged_statements: list[int]
    unchanged_status: list[str]
    unchanged_sql: list[str]
    one_file_s: float
    one_file_cpu_s: float
    one_file_files_parsed: int
    one_file_changes: int
    one_file_statements: int
    one_file_status: str

    @property
    def one_file_ratio(self) -> float:
        return self.one_file_s / self.first_apply_s

    @property
    def one_file_cpu_ratio(self) -> float:
        return self.one_file_cpu_s / self.first_apply_cpu_s


class Databases:
    """Hand out fresh, empty databases of one kind: SQLite files or PostgreSQL databases."""

    def __init__(self, kind: str, workdir: Path, admin_url: str | None = None) -> None:
        self.kind = kind
        self.workdir = workdir
        self.admin_url = admin_url
        self.count = 0

    def new(self) -> str:
        self.count += 1
        if self.kind == "sqlite":
            path = self.workdir / f"bench-{self.count}.db"
            for leftover in (path, path.with_suffix(".db-wal"), path.with_suffix(".db-shm")):
                leftover.unlink(missing_ok=True)
            return f"sqlite:///{path}"
        assert self.admin_url is not None, "PostgreSQL needs an admin URL"
        name = f"q2q_bench_{self.count}"
        admin = sa.create_engine(
            database.normalise_url(self.admin_url), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        admin.dispose()
        return (
            sa.make_url(database.normalise_url(self.admin_url))
            .set(database=name)
            .render_as_string(hide_password=False)
        )


@contextmanager
def repository(specs: int, workdir: Path) -> Iterator[tuple[Path, str]]:
    """Generate (once) a repository of `specs` specs; yield it and its base revision."""
    repo = workdir / f"repo-{specs}"
    if not repo.exists():
        generate(repo, specs)
    yield repo, base_revision(repo)


def timed(reconciler: Reconciler) -> tuple[PassResult, float, float]:
    """Run one pass; return its result, wall time and this process's CPU time."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = reconciler.reconcile(trigger="bench")
    return result, time.perf_counter() - wall, time.process_time() - cpu


def run_trial(repo: Path, base: str, url: str, *, specs: int, kind: str) -> Trial:
    git(repo, "reset", "--quiet", "--hard", base)
    engine = database.connect(url)
    database.ensure_schema(engine)
    counter = StatementCounter(engine)
    source = GitSource(str(repo), branch="main")
    reconciler = Reconciler(
        engine, source, options=ReconcileOptions(spec_dir="models", instance="bench")
    )

    first, first_s, first_cpu = timed(reconciler)
    first_statements = len(counter.take())

    unchanged_s, unchanged_cpu, parsed, statements, statuses = [], [], [], [], []
    sql: list[str] = []
    for _ in range(UNCHANGED_PASSES):
        result, wall, cpu = timed(reconciler)
        unchanged_s.append(wall)
        unchanged_cpu.append(cpu)
        sql = counter.take()
        parsed.append(result.files_parsed)
        statements.append(len(sql))
        statuses.append(result.status)

    edit_one(repo, note=f"trial on {kind}")
    one_file, one_s, one_cpu = timed(reconciler)
    one_statements = len(counter.take())

    source.close()
    engine.dispose()
    return Trial(
        specs=specs,
        database=kind,
        first_apply_s=first_s,
        first_apply_cpu_s=first_cpu,
        first_apply_status=first.status,
        first_apply_changes=len(first.plan),
        first_apply_statements=first_statements,
        unchanged_s=unchanged_s,
        unchanged_cpu_s=unchanged_cpu,
        unchanged_files_parsed=parsed,
        unchanged_statements=statements,
        unchanged_status=statuses,
        unchanged_sql=[statement[:100] for statement in sql],
        one_file_s=one_s,
        one_file_cpu_s=one_cpu,
        one_file_files_parsed=one_file.files_parsed,
        one_file_changes=len(one_file.plan),
        one_file_statements=one_statements,
        one_file_status=one_file.status,
    )


def summarise(trials: list[Trial]) -> dict[str, Any]:
    """Return medians over the trials of one size and database, and the values seen."""
    unchanged_counts = sorted({n for t in trials for n in t.unchanged_statements})
    return {
        "specs": trials[0].specs,
        "database": trials[0].database,
        "trials": len(trials),
        "first_apply_s": median([t.first_apply_s for t in trials]),
        "first_apply_cpu_s": median([t.first_apply_cpu_s for t in trials]),
        "first_apply_changes": trials[0].first_apply_changes,
        "first_apply_statements": trials[0].first_apply_statements,
        "unchanged_s": median([s for t in trials for s in t.unchanged_s]),
        "unchanged_cpu_s": median([s for t in trials for s in t.unchanged_cpu_s]),
        "unchanged_files_parsed": sorted({n for t in trials for n in t.unchanged_files_parsed}),
        "unchanged_statements": unchanged_counts,
        "unchanged_status": sorted({s for t in trials for s in t.unchanged_status}),
        "unchanged_sql": trials[0].unchanged_sql,
        "one_file_s": median([t.one_file_s for t in trials]),
        "one_file_cpu_s": median([t.one_file_cpu_s for t in trials]),
        "one_file_files_parsed": sorted({t.one_file_files_parsed for t in trials}),
        "one_file_changes": sorted({t.one_file_changes for t in trials}),
        "one_file_statements": sorted({t.one_file_statements for t in trials}),
        "one_file_ratio": median([t.one_file_ratio for t in trials]),
        "one_file_ratios": [t.one_file_ratio for t in trials],
        "one_file_cpu_ratio": median([t.one_file_cpu_ratio for t in trials]),
        "one_file_cpu_ratios": [t.one_file_cpu_ratio for t in trials],
        "first_apply_s_each": [t.first_apply_s for t in trials],
        "one_file_s_each": [t.one_file_s for t in trials],
    }


def run(
    sizes: list[int], kind: str, workdir: Path, *, repeat: int, admin_url: str | None = None
) -> list[dict[str, Any]]:
    databases = Databases(kind, workdir, admin_url)
    summaries = []
    for specs in sizes:
        with repository(specs, workdir) as (repo, base):
            trials = [
                run_trial(repo, base, databases.new(), specs=specs, kind=kind)
                for _ in range(repeat)
            ]
        summaries.append(summarise(trials))
    return summaries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, action="append", help="repeatable; default 1000")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="reuse this directory (default: a temp dir)")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sizes = arguments.specs or [1000]

    with tempfile.TemporaryDirectory(prefix="q2q-bench-") as temporary:
        workdir = arguments.workdir or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        if arguments.database == "postgresql":
            from bench.postgres import TemporaryServer

            with TemporaryServer() as server:
                summaries = run(
                    sizes,
                    "postgresql",
                    workdir,
                    repeat=arguments.repeat,
                    admin_url=server.admin_url,
                )
        else:
            summaries = run(sizes, "sqlite", workdir, repeat=arguments.repeat)
    print(json.dumps(summaries, indent=2))


if __name__ == "__main__":
    main()
