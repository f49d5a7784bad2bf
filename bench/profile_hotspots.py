"""cProfile summaries of the slow paths: validate_directory, the first apply, a one-file pass.

    python -m bench.profile_hotspots --specs 10000 [--top 25] [--workdir DIR]

Prints, for each profiled call, the functions with the most own time
(tottime) and the most cumulative time, restricted to the top N lines. The
profiler adds overhead, so use the shares, not the absolute times.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.generate import base_revision, edit_one, generate, git
from reconciler.cli.validate import validate_directory
from reconciler.git_source import GitSource
from reconciler.reconcile import ReconcileOptions, Reconciler
from registry_state import database


def profile(label: str, call: Callable[[], Any], *, top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    call()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    total = stats.total_tt  # type: ignore[attr-defined]
    out.write(f"===== {label}: {total:.2f} s under the profiler\n")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def run(specs: int, workdir: Path, *, top: int) -> str:
    repo = workdir / f"repo-{specs}"
    if not repo.exists():
        generate(repo, specs)
    base = base_revision(repo)
    git(repo, "reset", "--quiet", "--hard", base)
    reports = [
        profile(
            f"validate_directory, {specs} files",
            lambda: validate_directory(repo / "models"),
            top=top,
        )
    ]

    path = workdir / "profile.db"
    for leftover in (path, path.with_suffix(".db-wal"), path.with_suffix(".db-shm")):
        leftover.unlink(missing_ok=True)
    engine = database.connect(f"sqlite:///{path}")
    database.ensure_schema(engine)
    reconciler = Reconciler(
        engine,
        GitSource(str(repo), branch="main"),
        options=ReconcileOptions(spec_dir="models", instance="bench"),
    )
    reports.append(profile(f"first full apply, {specs} specs", reconciler.reconcile, top=top))
    reports.append(profile(f"unchanged pass, {specs} specs", reconciler.reconcile, top=top))
    edit_one(repo, note="profile")
    reports.append(profile(f"one-file change, {specs} specs", reconciler.reconcile, top=top))
    engine.dispose()
    git(repo, "reset", "--quiet", "--hard", base)
    return "\n".join(reports)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=10000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--workdir", type=Path)
    arguments = parser.parse_args()
    if arguments.workdir:
        arguments.workdir.mkdir(parents=True, exist_ok=True)
        print(run(arguments.specs, arguments.workdir, top=arguments.top))
        return
    with tempfile.TemporaryDirectory(prefix="q2q-profile-") as temporary:
        print(run(arguments.specs, Path(temporary), top=arguments.top))


if __name__ == "__main__":
    main()
