"""Peak memory of a first full apply and of validate, each in a fresh process.

As a parent (`measure`), it starts one child per case and reads the child's
peak resident set size from wait4. As a child, it runs one case and prints
JSON with its own figures. With `--tracemalloc` it also reports the peak of
memory allocated by Python during the case. Tracemalloc slows the run, so its
timings are not used.

    python -m bench.peak_memory child-apply REPO URL [--tracemalloc]
    python -m bench.peak_memory child-validate DIR [--tracemalloc]
    python -m bench.peak_memory child-imports
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.measure import bench_python, q2q_command, run_child


def _child_apply(repo: Path, url: str) -> dict[str, Any]:
    from reconciler.git_source import GitSource
    from reconciler.reconcile import ReconcileOptions, Reconciler
    from registry_state import database

    engine = database.connect(url)
    database.ensure_schema(engine)
    reconciler = Reconciler(
        engine,
        GitSource(str(repo), branch="main"),
        options=ReconcileOptions(spec_dir="models", instance="bench"),
    )
    result = reconciler.reconcile(trigger="bench")
    return {
        "status": result.status,
        "changes": len(result.plan),
        "files_parsed": result.files_parsed,
    }


def _child_validate(directory: Path) -> dict[str, Any]:
    from reconciler.cli.validate import validate_directory

    specs, problems, files = validate_directory(directory)
    return {"files": files, "specs": len(specs), "problems": len(problems)}


def _child_imports() -> dict[str, Any]:
    import reconciler.cli.validate
    import reconciler.reconcile  # noqa: F401
    from registry_state import database  # noqa: F401

    return {}


def child(arguments: argparse.Namespace) -> None:
    # Import what the case needs before tracing, so the peak is about the data.
    _child_imports()
    if arguments.tracemalloc:
        tracemalloc.start()
    started = time.perf_counter()
    if arguments.case == "child-apply":
        report = _child_apply(Path(arguments.paths[0]), arguments.paths[1])
    elif arguments.case == "child-validate":
        report = _child_validate(Path(arguments.paths[0]))
    else:
        report = {}
    report["seconds"] = time.perf_counter() - started
    if arguments.tracemalloc:
        _current, peak = tracemalloc.get_traced_memory()
        report["tracemalloc_peak_mb"] = peak / 1024 / 1024
        tracemalloc.stop()
    report["vm_hwm_mb"] = _vm_hwm_kb() / 1024
    print(json.dumps(report))


def _vm_hwm_kb() -> int:
    """Peak RSS of this process since its exec, from /proc (not inherited from the parent)."""
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _run(command: list[str]) -> dict[str, Any]:
    run = run_child(command)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {run.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(run.stdout) if run.stdout.strip() else {}
    report["max_rss_mb"] = run.max_rss_mb
    report["launcher_rss_mb"] = run.launcher_rss_mb
    report["wall_s"] = run.wall_s
    return report


def measure(repo: Path, new_database: Any, *, traced: bool = True) -> dict[str, Any]:
    """Measure peak memory for one repository; `new_database()` returns a fresh URL.

    With `traced`, the apply and validate cases run a second time under
    tracemalloc, which took five to ten times as long on the 2-core dev machine.
    """
    python = bench_python()
    me = [python, "-m", "bench.peak_memory"]
    models = str(repo / "models")
    report = {
        "imports_only": _run([*me, "child-imports"]),
        "apply": _run([*me, "child-apply", str(repo), new_database()]),
        "q2q_validate": _run([q2q_command(), "validate", models]),
    }
    if traced:
        report["apply_tracemalloc"] = _run(
            [*me, "child-apply", str(repo), new_database(), "--tracemalloc"]
        )
        report["validate_tracemalloc"] = _run([*me, "child-validate", models, "--tracemalloc"])
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=("child-apply", "child-validate", "child-imports"))
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--tracemalloc", action="store_true")
    child(parser.parse_args())


if __name__ == "__main__":
    main()
