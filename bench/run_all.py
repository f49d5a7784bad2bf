"""Run every benchmark in one process and check the targets.

Generates repositories of 1,000 and 10,000 specs in a temporary directory,
then measures, in this order: `q2q validate` against its libyaml floor,
reconcile passes on SQLite, peak memory on SQLite, and, when a PostgreSQL
server can be started, reconcile passes and peak memory on PostgreSQL. The
results go to a JSON file and a summary to standard output.

    python -m bench.run_all [--repeat 3] [--no-postgresql] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import peak_memory, reconcile_specs, validate_specs
from bench.generate import generate
from bench.measure import REPOSITORY_ROOT, machine

SIZES = (1000, 10000)
VALIDATE_RATIO_TARGET = 1.5
ONE_FILE_RATIO_TARGET = 0.05
MEMORY_TARGET_MB = 300.0


def _project_revision() -> dict[str, Any]:
    def git(*arguments: str) -> str:
        return subprocess.run(
            ["git", *arguments],
            cwd=REPOSITORY_ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()

    return {
        "head": git("rev-parse", "HEAD"),
        "modified_under_src": git("status", "--short", "--", "src").splitlines(),
    }


def _section(results: dict[str, Any], name: str, call: Any) -> Any:
    load_before = os.getloadavg()
    started = time.perf_counter()
    value = call()
    results.setdefault("sections", {})[name] = {
        "seconds": time.perf_counter() - started,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    results[name] = value
    print(f"-- {name} done in {time.perf_counter() - started:.1f} s", flush=True)
    return value


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    validate = results["validate_10000"]
    checks.append(
        {
            "target": "q2q validate within 1.5x of the libyaml floor (wall, 10,000 files)",
            "value": round(validate["wall_ratio"], 2),
            "met": validate["wall_ratio"] <= VALIDATE_RATIO_TARGET,
        }
    )
    for kind in ("sqlite", "postgresql"):
        summaries = results.get(f"reconcile_{kind}")
        if not summaries:
            continue
        by_size = {s["specs"]: s for s in summaries}
        parsed = {size: s["unchanged_files_parsed"] for size, s in by_size.items()}
        counts = {size: s["unchanged_statements"] for size, s in by_size.items()}
        checks.append(
            {
                "target": f"{kind}: unchanged pass parses 0 files",
                "value": parsed,
                "met": all(v == [0] for v in parsed.values()),
            }
        )
        distinct = {tuple(v) for v in counts.values()}
        checks.append(
            {
                "target": f"{kind}: unchanged pass issues the same number of statements "
                "at 1,000 and 10,000 specs",
                "value": counts,
                "met": len(distinct) == 1 and all(len(v) == 1 for v in distinct),
            }
        )
        big = by_size.get(10000)
        if big:
            checks.append(
                {
                    "target": f"{kind}: one-file change pass under 5% of the first apply "
                    "(10,000 specs)",
                    "value": round(big["one_file_ratio"], 4),
                    "cpu_ratio": round(big["one_file_cpu_ratio"], 4),
                    "met": big["one_file_ratio"] < ONE_FILE_RATIO_TARGET,
                }
            )
        memory = results.get(f"memory_{kind}")
        if memory:
            for case in ("apply", "q2q_validate"):
                checks.append(
                    {
                        "target": f"{kind}: peak RSS of {case} under 300 MB (10,000 specs)",
                        "value": round(memory[case]["max_rss_mb"], 1),
                        "met": memory[case]["max_rss_mb"] < MEMORY_TARGET_MB,
                    }
                )
    return checks


def run(workdir: Path, *, repeat: int, postgresql: bool) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": machine(),
        "project": _project_revision(),
        "repeat": repeat,
    }
    generated = {}
    for size in SIZES:
        started = time.perf_counter()
        generate(workdir / f"repo-{size}", size)
        generated[size] = time.perf_counter() - started
    results["generate_s"] = generated
    repo = workdir / "repo-10000"

    _section(
        results, "validate_10000", lambda: validate_specs.measure(repo / "models", repeat=repeat)
    )
    _section(
        results,
        "reconcile_sqlite",
        lambda: reconcile_specs.run(list(SIZES), "sqlite", workdir, repeat=repeat),
    )
    sqlite_databases = reconcile_specs.Databases("sqlite", workdir / "memory")
    (workdir / "memory").mkdir()
    _section(
        results,
        "memory_sqlite",
        lambda: peak_memory.measure(repo, sqlite_databases.new, traced=True),
    )

    if postgresql:
        from bench.postgres import TemporaryServer

        server = TemporaryServer()
        try:
            server.start()
        except (RuntimeError, OSError) as error:
            results["postgresql_unavailable"] = str(error)
            server.close()
        else:
            try:
                results["machine"]["postgresql"] = server.version()
                _section(
                    results,
                    "reconcile_postgresql",
                    lambda: reconcile_specs.run(
                        list(SIZES),
                        "postgresql",
                        workdir,
                        repeat=repeat,
                        admin_url=server.admin_url,
                    ),
                )
                pg_databases = reconcile_specs.Databases("postgresql", workdir, server.admin_url)
                pg_databases.count = 100
                _section(
                    results,
                    "memory_postgresql",
                    lambda: peak_memory.measure(repo, pg_databases.new, traced=False),
                )
            finally:
                server.close()
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["targets"] = check_targets(results)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-postgresql", action="store_true")
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).with_name("results") / "latest.json"
    )
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="q2q-bench-") as temporary:
        results = run(
            Path(temporary), repeat=arguments.repeat, postgresql=not arguments.no_postgresql
        )
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {arguments.output}")
    for check in results["targets"]:
        print(f"{'MET   ' if check['met'] else 'MISSED'} {check['target']}: {check['value']}")


if __name__ == "__main__":
    main()
