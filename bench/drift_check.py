"""Benchmark a drift check over many predictions on SQLite and PostgreSQL.

Loads `--rows` generated predictions (8 labels x 10 languages, scores over 28
days) with the product's bulk writer, then times, `--repeat` times each:
- the bare aggregation query that the check runs (GROUP BY label, language,
  window and 10 score bins), fetched to the client;
- the end-to-end check of a histogram policy (query, numpy metrics, storing
  80 drift checks), and its metric stage alone;
and the peak RSS of a child process that runs one check. With `--evidently`
(the `bench` extra installed) it also computes PSI for the same 80 groups
with Evidently's PSI test on the same rows held in pandas.

    python -m bench.drift_check [--rows 10000000] [--repeat 3] [--no-sqlite]
        [--no-postgresql] [--evidently] [--output bench/results/drift.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git
import numpy as np
import sqlalchemy as sa

from policies.drift_policy import parse_policies
from reconciler.drift_check import DriftChecker
from reconciler.git_source import GitSource
from registry_state import database
from registry_state.drift_store import CountRequest, Window, aggregation_query
from registry_state.prediction_store import analyze, write_predictions
from registry_state.predictions import PredictionRow

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAYS = 28
LABELS, LANGUAGES, BINS = 8, 10, 10
MODEL = "q2q-bench-model"
POLICY = f"""\
policies:
  - id: bench
    models: [{MODEL}]
    distribution: {{kind: histogram, bins: {BINS}}}
    baseline:
      window: {{start: "2026-01-01T00:00:00Z", end: "2026-01-15T00:00:00Z"}}
    current_window: 7d
    min_sample_size: 100
"""
CHECK_TIME = T0 + dt.timedelta(days=DAYS)


def generate(rows: int, *, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    minutes = rng.integers(0, DAYS * 1440, rows)
    score = np.clip(rng.beta(2 + minutes / 1440 / DAYS, 5, rows), 0, 1)
    score[rng.integers(0, rows, rows // 1000)] = 1.0
    return {"label": rng.integers(0, LABELS, rows), "language": rng.integers(0, LANGUAGES, rows),
            "score": np.round(score, 6), "minute": minutes}


def batches(data: dict[str, np.ndarray], size: int = 100_000) -> Iterator[list[PredictionRow]]:
    times = [T0 + dt.timedelta(minutes=minute) for minute in range(DAYS * 1440)]
    labels = [f"label{k}" for k in range(LABELS)]
    languages = [f"lang{k}" for k in range(LANGUAGES)]
    total = len(data["label"])
    for begin in range(0, total, size):
        end = min(begin + size, total)
        yield [
            PredictionRow(MODEL, "claude", languages[language], labels[label], score,
                          score >= 0.5, times[minute], str(number))
            for number, label, language, score, minute in zip(
                range(begin, end), data["label"][begin:end].tolist(),
                data["language"][begin:end].tolist(), data["score"][begin:end].tolist(),
                data["minute"][begin:end].tolist(), strict=True)
        ]


def policy_repo(directory: Path) -> GitSource:
    repo = git.Repo.init(directory, initial_branch="main")
    (directory / "policies").mkdir()
    (directory / "policies" / "drift.yaml").write_text(POLICY)
    repo.git.add("--all")
    repo.git.commit("-m", "Add the benchmark policy",
                    env={"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
                         "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"})
    return GitSource(str(directory))


def checker_for(engine: sa.Engine, directory: Path) -> tuple[DriftChecker, Any, str]:
    source = policy_repo(directory)
    revision = source.resolve().revision
    checker = DriftChecker(engine, source, clock=lambda: CHECK_TIME)
    [policy] = parse_policies(POLICY.encode())
    return checker, policy, revision


def bare_query(engine: sa.Engine) -> float:
    request = CountRequest(
        model_ids=[MODEL], current=Window(CHECK_TIME - dt.timedelta(days=7), CHECK_TIME),
        baseline=Window(T0, T0 + dt.timedelta(days=14)), bins=BINS)
    started = time.perf_counter()
    with engine.connect() as connection:
        rows = connection.execute(aggregation_query(request, engine.dialect.name)).all()
    elapsed = time.perf_counter() - started
    # At most one row per group, window and bin; a bin without scores has no row.
    assert 0 < len(rows) <= LABELS * LANGUAGES * BINS * 2, len(rows)
    return elapsed


def _vm_hwm_mb() -> float:
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(url: str) -> None:
    """Run one end-to-end check and print the peak RSS before and after it."""
    engine = database.connect(url)
    with tempfile.TemporaryDirectory() as directory:
        checker, policy, revision = checker_for(engine, Path(directory))
        before = _vm_hwm_mb()
        run = checker.run_policy(policy, revision=revision)
        print(json.dumps({"rss_before_check_mb": round(before, 1),
                          "peak_rss_mb": round(_vm_hwm_mb(), 1), "checks": len(run.records)}))


def measure(url: str, data: dict[str, np.ndarray], *, repeat: int) -> dict[str, Any]:
    engine = database.connect(url)
    database.upgrade(engine)
    started = time.perf_counter()
    with engine.begin() as connection:
        write_predictions(connection, batches(data), skip_duplicates=False)
    with engine.begin() as connection:
        analyze(connection)
    load_s = time.perf_counter() - started
    print(f"  loaded {len(data['label']):,} rows in {load_s:.1f}s", flush=True)

    bare, end_to_end, metric = [], [], []
    with tempfile.TemporaryDirectory() as directory:
        checker, policy, revision = checker_for(engine, Path(directory))
        bare_query(engine)  # warm the cache once, as a scheduled check would find it
        for _ in range(repeat):
            bare.append(bare_query(engine))
            run = checker.run_policy(policy, revision=revision)
            end_to_end.append(run.duration_s)
            metric.append(run.timings["metrics_s"])
            print(f"  bare {bare[-1]:.2f}s, check {end_to_end[-1]:.2f}s, metrics "
                  f"{metric[-1] * 1000:.2f}ms", flush=True)
    memory = subprocess.run([sys.executable, "-m", "bench.drift_check", "child", url],
                            capture_output=True, text=True, check=True)
    engine.dispose()
    return {
        "rows": len(data["label"]), "load_s": round(load_s, 1),
        "bare_query_s": [round(v, 3) for v in bare],
        "check_s": [round(v, 3) for v in end_to_end],
        "metrics_ms": [round(v * 1000, 3) for v in metric],
        "check_to_query_ratio": round(statistics.median(end_to_end) / statistics.median(bare),
                                      3),
        "memory": json.loads(memory.stdout.strip().splitlines()[-1]),
    }


def evidently(data: dict[str, np.ndarray], *, repeat: int) -> dict[str, Any]:
    """PSI per group with Evidently's PSI stat test on the same rows, in pandas."""
    import evidently  # type: ignore[import-not-found]
    import pandas as pd  # type: ignore[import-untyped]
    from evidently.legacy.calculations.stattests.psi import (  # type: ignore[import-not-found]
        psi_stat_test,
    )

    frame = pd.DataFrame({"label": data["label"], "language": data["language"],
                          "score": data["score"], "minute": data["minute"]})
    baseline = frame[frame.minute < 14 * 1440]
    current = frame[frame.minute >= 21 * 1440]
    times = []
    values: dict[str, float] = {}
    for _ in range(repeat):
        started = time.perf_counter()
        base_groups = dict(iter(baseline.groupby(["label", "language"]).score))
        for key, scores in current.groupby(["label", "language"]).score:
            result = psi_stat_test.func(base_groups[key], scores, "num", 0.1)
            values[f"label{key[0]}/lang{key[1]}"] = float(result[0])
        times.append(time.perf_counter() - started)
    return {"version": evidently.__version__, "pandas": pd.__version__,
            "psi_all_groups_s": [round(v, 3) for v in times], "groups": len(values),
            "psi_sample": dict(list(values.items())[:3])}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "child":
        child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgresql", action="store_true")
    parser.add_argument("--evidently", action="store_true")
    parser.add_argument("--output", type=Path, default=Path("bench/results/drift.json"))
    arguments = parser.parse_args()

    data = generate(arguments.rows)
    report: dict[str, Any] = {"rows": arguments.rows, "groups": LABELS * LANGUAGES,
                              "bins": BINS}
    with tempfile.TemporaryDirectory(prefix="q2q-drift-bench-") as directory:
        if not arguments.no_sqlite:
            print("SQLite", flush=True)
            report["sqlite"] = measure(f"sqlite:///{directory}/bench.db", data,
                                       repeat=arguments.repeat)
    if not arguments.no_postgresql:
        from bench.postgres import TemporaryServer

        with TemporaryServer() as server:
            print(f"PostgreSQL {server.version()}", flush=True)
            report["postgresql"] = measure(server.admin_url, data, repeat=arguments.repeat)
    if arguments.evidently:
        report["evidently"] = evidently(data, repeat=arguments.repeat)
        print(f"  Evidently PSI for all groups: {report['evidently']['psi_all_groups_s']}")
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
