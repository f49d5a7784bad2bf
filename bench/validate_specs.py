"""`q2q validate DIR` against its floor, plain libyaml parsing of the same files.

Both run as fresh child processes, interleaved (floor, q2q, floor, q2q, ...),
and their wall times include interpreter start-up and imports. CPU time
(user + system, from wait4) is reported beside wall time because it is less
disturbed by other load on the machine. The in-process time of
`validate_directory` (imports already done) is measured in this process.

    python -m bench.validate_specs --specs 10000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.generate import generate
from bench.measure import bench_python, median, q2q_command, run_child


def startup_costs(repeat: int) -> dict[str, float]:
    """Wall time of an empty interpreter and of the imports each side needs."""
    python = bench_python()
    empty = [run_child([python, "-c", "pass"]).wall_s for _ in range(repeat)]
    floor_imports = [run_child([python, "-c", "import yaml"]).wall_s for _ in range(repeat)]
    q2q_imports = [
        run_child([python, "-c", "import reconciler.cli.main, reconciler.cli.validate"]).wall_s
        for _ in range(repeat)
    ]
    return {
        "python_empty_s": median(empty),
        "python_import_yaml_s": median(floor_imports),
        "python_import_q2q_validate_s": median(q2q_imports),
    }


def measure(models: Path, *, repeat: int) -> dict[str, Any]:
    python = bench_python()
    floor_runs, q2q_runs = [], []
    for _ in range(repeat):
        floor_runs.append(run_child([python, "-m", "bench.yaml_floor", str(models)]))
        q2q_runs.append(run_child([q2q_command(), "validate", str(models)]))
    for run in floor_runs + q2q_runs:
        if run.returncode != 0:
            raise RuntimeError(f"a child failed ({run.returncode}): {run.stderr[-2000:]}")

    from reconciler.cli.validate import validate_directory

    in_process = []
    for _ in range(repeat):
        started = time.perf_counter()
        specs, problems, files = validate_directory(models)
        in_process.append(time.perf_counter() - started)

    floor_wall = median([r.wall_s for r in floor_runs])
    q2q_wall = median([r.wall_s for r in q2q_runs])
    floor_cpu = median([r.cpu_s for r in floor_runs])
    q2q_cpu = median([r.cpu_s for r in q2q_runs])
    return {
        "files": files,
        "specs": len(specs),
        "problems": len(problems),
        "q2q_stderr": q2q_runs[0].stderr.strip().splitlines()[-1],
        "floor_wall_s": floor_wall,
        "q2q_wall_s": q2q_wall,
        "wall_ratio": q2q_wall / floor_wall,
        "floor_cpu_s": floor_cpu,
        "q2q_cpu_s": q2q_cpu,
        "cpu_ratio": q2q_cpu / floor_cpu,
        "floor_max_rss_mb": max(r.max_rss_mb for r in floor_runs),
        "q2q_max_rss_mb": max(r.max_rss_mb for r in q2q_runs),
        "in_process_validate_directory_s": median(in_process),
        "floor_wall_each": [r.wall_s for r in floor_runs],
        "q2q_wall_each": [r.wall_s for r in q2q_runs],
        "in_process_each": in_process,
        **startup_costs(repeat),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="q2q-bench-") as temporary:
        workdir = arguments.workdir or Path(temporary)
        repo = workdir / f"repo-{arguments.specs}"
        if not repo.exists():
            generate(repo, arguments.specs)
        print(json.dumps(measure(repo / "models", repeat=arguments.repeat), indent=2))


if __name__ == "__main__":
    main()
