"""Shared helpers: child processes with their own resource usage, medians, machine facts."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ChildRun:
    """One finished child process: wall time, CPU time and peak RSS from wait4."""

    wall_s: float
    cpu_s: float
    max_rss_mb: float
    launcher_rss_mb: float
    returncode: int
    stdout: str
    stderr: str

    def as_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["stdout"] = self.stdout[-500:]
        values["stderr"] = self.stderr[-500:]
        return values


# Run by a small, fresh interpreter between the benchmark and the measured command.
# On Linux, exec keeps the peak RSS of the address space it replaces, so a
# child's ru_maxrss is at least the RSS of the process it was forked from.
# Forked from the benchmark process, it would report the benchmark's own RSS.
# The launcher is small (about 11 MB), which bounds that error.
_LAUNCHER = """
import json, os, subprocess, sys, time
report, out, err, command = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with open("/proc/self/status") as status_file:
    rss = [line.split()[1] for line in status_file if line.startswith("VmRSS:")][0]
with open(out, "wb") as stdout, open(err, "wb") as stderr:
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=stdout, stderr=stderr)
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
child.returncode = os.waitstatus_to_exitcode(status)
with open(report, "w") as report_file:
    json.dump({"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
               "max_rss_kb": usage.ru_maxrss, "launcher_rss_kb": int(rss),
               "returncode": child.returncode}, report_file)
"""


def run_child(command: Sequence[str], *, cwd: Path | None = None) -> ChildRun:
    """Run `command` and return its wall time (interpreter start included) and usage.

    A fresh launcher process starts the command and reads its resource usage
    with wait4, so the figures belong to this one child. On Linux ru_maxrss
    covers the child and any process it waited for, whichever was larger.
    """
    with tempfile.TemporaryDirectory(prefix="q2q-bench-child-") as temporary:
        report_path = Path(temporary) / "report.json"
        out_path = Path(temporary) / "stdout"
        err_path = Path(temporary) / "stderr"
        launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER]
        subprocess.run(
            [*launcher, str(report_path), str(out_path), str(err_path), *command],
            cwd=cwd,
            check=True,
        )
        report = json.loads(report_path.read_text())
        stdout = out_path.read_text(errors="replace")
        stderr = err_path.read_text(errors="replace")
    return ChildRun(
        wall_s=report["wall_s"],
        cpu_s=report["cpu_s"],
        max_rss_mb=report["max_rss_kb"] / 1024,
        launcher_rss_mb=report["launcher_rss_kb"] / 1024,
        returncode=report["returncode"],
        stdout=stdout,
        stderr=stderr,
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def bench_python() -> str:
    """Return the interpreter running the benchmark, the project's virtual environment."""
    return sys.executable


def q2q_command() -> str:
    return str(Path(sys.executable).with_name("q2q"))


def machine() -> dict[str, Any]:
    """Return facts about the machine and the software versions, for the results file."""
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_kb = 0
    with open("/proc/meminfo", encoding="utf-8") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    git_version = subprocess.run(
        ["git", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    import pydantic
    import yaml

    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sa.__version__,
        "pydantic": pydantic.__version__,
        "pyyaml": f"{yaml.__version__} (libyaml {'yes' if yaml.__with_libyaml__ else 'no'})",
        "git": git_version,
        "load_average_at_start": os.getloadavg(),
    }
