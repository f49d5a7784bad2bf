"""Evaluation throughput: N rows against a fake provider with a fixed latency.

Starts the test suite's fake provider on 127.0.0.1 in a child process (every
reply waits `--latency-ms`), stores a dataset of N distinct rows in a new SQLite
database, and runs the real harness through the real `anthropic` SDK with
`--concurrency` requests in flight. It reports the first run's wall time
against the ideal N / concurrency × latency, then reruns and reports the
provider calls the rerun made (the cache should make it zero).

    python -m bench.eval_throughput --rows 1000 --latency-ms 100 --concurrency 16
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from reconciler.evaluation import EvaluatedModel, EvaluationRequest, run_evaluation
from reconciler.providers import CallSettings
from reconciler.providers.anthropic_adapter import AnthropicAdapter
from registry_state import database, datasets
from registry_state.prompts import PromptTemplate
from registry_state.taxonomy import DEFAULT_TAXONOMY
from support.eval_fixtures import LABELS, PROBABILITY_LABELS, PROMPT


def dataset_csv(rows: int) -> bytes:
    lines = [",".join(["text", "language", *LABELS])]
    for index in range(rows):
        marker = LABELS[index % len(LABELS)]
        language = ("en", "es", "pt")[index % 3]
        labels = ["1" if label == marker else "0" for label in LABELS]
        lines.append(",".join([f"feedback number {index} #{marker}", language, *labels]))
    return ("\n".join(lines) + "\n").encode()


def run_once(engine: object, request: EvaluationRequest, *, base_url: str,
             concurrency: int) -> tuple[float, int, int]:
    adapter = AnthropicAdapter(taxonomy=DEFAULT_TAXONOMY, base_url=base_url,
                               settings=CallSettings(concurrency=concurrency, timeout_s=30))
    started = time.perf_counter()
    outcome = run_evaluation(engine, request, adapter=adapter)  # type: ignore[arg-type]
    return time.perf_counter() - started, outcome.provider_calls, outcome.rows_failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, default=16)
    arguments = parser.parse_args()
    os.environ.setdefault("ANTHROPIC_API_KEY", "bench-dummy-key")

    latency_s = arguments.latency_ms / 1000
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_provider_server",
         "--latency-ms", str(arguments.latency_ms)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    base_url = server.stdout.readline().strip()
    with tempfile.TemporaryDirectory() as directory:
        engine = database.connect(f"sqlite:///{directory}/bench.db")
        database.upgrade(engine)
        parsed = datasets.parse_dataset(dataset_csv(arguments.rows), source="bench.csv",
                                        taxonomy=DEFAULT_TAXONOMY)
        with engine.begin() as connection:
            record, _ = datasets.store_dataset(connection, parsed, name="bench",
                                               now=dt.datetime.now(dt.UTC))
        model = EvaluatedModel(model_id="q2q-bench", provider="claude", model_name="claude-fake",
                               prompt_version="v1.0",
                               thresholds={name: 0.5 if name in PROBABILITY_LABELS else 1
                                           for name in LABELS},
                               identity_hash="bench")
        prompt = PromptTemplate(path="prompts/v1.0.txt", content=PROMPT.encode())

        def request() -> EvaluationRequest:
            return EvaluationRequest(model=model, prompt=prompt, dataset_id=record.id,
                                     taxonomy=DEFAULT_TAXONOMY)

        first_s, first_calls, failed = run_once(engine, request(), base_url=base_url,
                                                concurrency=arguments.concurrency)
        rerun_s, rerun_calls, _ = run_once(engine, request(), base_url=base_url,
                                           concurrency=arguments.concurrency)
        engine.dispose()  # type: ignore[attr-defined]
    server.stdin.close()
    server_requests = int(server.stdout.readline().strip() or 0)
    server.wait(timeout=10)

    ideal_s = arguments.rows / arguments.concurrency * latency_s
    result = {
        "rows": arguments.rows,
        "latency_ms": arguments.latency_ms,
        "concurrency": arguments.concurrency,
        "ideal_s": round(ideal_s, 3),
        "first_run_s": round(first_s, 3),
        "ratio_to_ideal": round(first_s / ideal_s, 3),
        "first_run_provider_calls": first_calls,
        "first_run_rows_failed": failed,
        "rerun_s": round(rerun_s, 3),
        "rerun_provider_calls": rerun_calls,
        "server_requests": server_requests,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
