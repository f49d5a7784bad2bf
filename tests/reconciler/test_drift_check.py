"""Drift checks end to end: policies in a real git repository, predictions in a real database.

Real: git, the YAML files, SQLite and PostgreSQL, a webhook server on
127.0.0.1. Fake: only the clock.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import git
import numpy as np
import pytest
import sqlalchemy as sa

from reconciler.drift_check import DriftChecker, DriftCheckError
from reconciler.git_source import GitSource
from registry_state import drift_store
from registry_state.tables import model_registry
from support.git_repo import NOW, Clock, ModelsRepo
from support.predictions import load, row, shares_rows

DRIFTING = "q2q-claude-v2-multilingual"
PREVIOUS = "q2q-claude-v1"
DAY = dt.timedelta(days=1)
WINDOW_START = NOW - 7 * DAY

GUIDE_POLICY = """\
policies:
  - id: guide
    labels: [confidence_increase]
    languages: [en]
    baseline:
      distribution: {positive: 0.30, negative: 0.70}
    min_sample_size: 50
    actions: [record%s]
"""


def setup_repo(models_repo: ModelsRepo, policy: str) -> str:
    models_repo.write_spec(PREVIOUS, effective_from="2025-01-15")
    models_repo.write_spec(DRIFTING, active=True)
    models_repo.write("policies/drift.yaml", policy)
    return models_repo.commit("Add models and a drift policy")


@pytest.fixture
def checker(
    engine: sa.Engine, models_repo: ModelsRepo, make_reconciler: Any, clock: Clock,
    tmp_path: Path,
) -> Iterator[Callable[..., DriftChecker]]:
    """Return a factory that applies the repository, then builds a checker on it."""
    sources: list[GitSource] = []

    def factory(policy: str) -> DriftChecker:
        setup_repo(models_repo, policy)
        make_reconciler().reconcile()
        source = GitSource(str(models_repo.root), cache_dir=tmp_path / "cache")
        sources.append(source)
        return DriftChecker(engine, source, clock=clock)

    yield factory
    for source in sources:
        source.close()


def stored(engine: sa.Engine, **filters: Any) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return drift_store.list_checks(connection, limit=1000, **filters)


def test_check_guide_example(engine: sa.Engine, checker: Any) -> None:
    drift = checker(GUIDE_POLICY % "")
    load(engine, shares_rows(0.5, 100, start=WINDOW_START, span=7 * DAY))

    [run] = drift.run()

    [record] = run.records
    assert record.psi == pytest.approx(0.169460, abs=5e-7)
    assert record.js == pytest.approx(0.021006, abs=5e-7)
    assert (record.status, record.psi_status, record.js_status) == ("moderate", "moderate",
                                                                    "none")
    [check] = stored(engine)
    assert check["psiScore"] == pytest.approx(0.169460, abs=5e-7)
    assert check["alertTriggered"] is False
    assert check["baselineDistribution"] == {"positive": 0.3, "negative": 0.7}
    assert check["currentDistribution"] == {"positive": 0.5, "negative": 0.5}
    assert check["sampleSize"] == 100
    assert check["modelId"] == DRIFTING
    assert check["policyId"] == "guide"
    assert check["windowStart"] == "2026-01-03T12:00:00Z"
    assert check["windowEnd"] == "2026-01-10T12:00:00Z"
    assert check["revision"] == run.revision


def test_check_alert_example(engine: sa.Engine, checker: Any) -> None:
    drift = checker(GUIDE_POLICY % "")
    load(engine, shares_rows(0.1, 100, start=WINDOW_START, span=7 * DAY))

    [run] = drift.run()

    [record] = run.records
    assert record.psi == pytest.approx(0.269985, abs=5e-7)
    assert record.status == "alert"
    [alert] = stored(engine, alerts_only=True)
    assert alert["alertTriggered"] is True
    assert alert["actions"]["recorded"] is True


def test_check_window_is_half_open(engine: sa.Engine, checker: Any) -> None:
    drift = checker(GUIDE_POLICY % "")
    rows = shares_rows(0.5, 100, start=WINDOW_START, span=7 * DAY)
    rows += [row(at=NOW, positive=True, request_id="at-end"),
             row(at=WINDOW_START - dt.timedelta(microseconds=1), request_id="before")]
    load(engine, rows)

    [run] = drift.run()

    assert run.records[0].sample_size == 100


def test_check_empty_window_insufficient(engine: sa.Engine, checker: Any) -> None:
    drift = checker(GUIDE_POLICY % "")
    load(engine, shares_rows(0.5, 100, start=WINDOW_START - 30 * DAY, span=7 * DAY))

    [run] = drift.run()

    [record] = run.records
    assert record.status == "insufficient_data"
    assert record.psi is None
    assert record.js is None
    assert record.sample_size == 0
    [check] = stored(engine)
    assert check["psiScore"] is None
    assert check["currentDistribution"] is None


WINDOW_POLICY = """\
policies:
  - id: windowed
    baseline:
      window: {start: "2025-12-01T00:00:00Z", end: "2025-12-15T00:00:00Z"}
    min_sample_size: 50
"""


def test_check_label_only_in_current(engine: sa.Engine, checker: Any) -> None:
    drift = checker(WINDOW_POLICY)
    baseline_start = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
    load(engine, shares_rows(0.3, 200, start=baseline_start, span=14 * DAY, prefix="b"))
    load(engine, shares_rows(0.3, 60, start=WINDOW_START, span=7 * DAY, prefix="c"))
    load(engine, shares_rows(0.5, 60, start=WINDOW_START, span=7 * DAY, label="brand_new",
                             prefix="n"))

    [run] = drift.run()

    statuses = {record.label: record.status for record in run.records}
    assert statuses == {"confidence_increase": "none", "brand_new": "no_baseline"}
    new = next(record for record in run.records if record.label == "brand_new")
    assert new.baseline_distribution is None
    assert new.psi is None


def test_check_fifty_rows_from_baseline(engine: sa.Engine, checker: Any) -> None:
    drift = checker(WINDOW_POLICY)
    baseline_start = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
    load(engine, shares_rows(0.3, 1000, start=baseline_start, span=14 * DAY, prefix="b"))
    positives = np.random.default_rng(42).random(50) < 0.3
    load(engine, [row(positive=bool(flag), at=WINDOW_START + DAY + i * dt.timedelta(hours=1),
                      request_id=f"c{i}") for i, flag in enumerate(positives)])

    [run] = drift.run()

    [record] = run.records
    assert record.sample_size == 50
    assert record.baseline_distribution == {"positive": 0.3, "negative": 0.7}
    assert record.status != "alert"
    assert stored(engine, alerts_only=True) == []


def test_check_histogram_policy(engine: sa.Engine, checker: Any) -> None:
    drift = checker("""\
policies:
  - id: scores
    distribution: {kind: histogram, bins: 4}
    baseline: {distribution: [0.25, 0.25, 0.25, 0.25]}
    min_sample_size: 4
""")
    load(engine, [row(score=score, at=WINDOW_START + DAY, request_id=f"s{i}")
                  for i, score in enumerate([0.0, 0.3, 0.6, 1.0])])

    [run] = drift.run()

    [record] = run.records
    assert record.psi == 0.0
    assert record.current_distribution == {"[0, 0.25)": 0.25, "[0.25, 0.5)": 0.25,
                                           "[0.5, 0.75)": 0.25, "[0.75, 1)": 0.25}


def test_check_evaluation_dataset_baseline(engine: sa.Engine, models_repo: ModelsRepo,
                                           checker: Any) -> None:
    models_repo.write("evals/baseline.csv", "label,language,positive\n"
                      + "confidence_increase,en,true\n" * 3
                      + "confidence_increase,en,false\n" * 7)
    drift = checker("""\
policies:
  - id: from-eval
    baseline: {evaluation_dataset: evals/baseline.csv}
    min_sample_size: 50
""")
    load(engine, shares_rows(0.5, 100, start=WINDOW_START, span=7 * DAY))

    [run] = drift.run()

    assert run.records[0].psi == pytest.approx(0.169460, abs=5e-7)


def test_check_policy_option(engine: sa.Engine, checker: Any) -> None:
    drift = checker(GUIDE_POLICY % "" + WINDOW_POLICY.removeprefix("policies:\n"))

    runs = drift.run(policy_id="windowed")

    assert [run.policy_id for run in runs] == ["windowed"]


def test_check_without_applied_revision(engine: sa.Engine, models_repo: ModelsRepo,
                                        clock: Clock) -> None:
    setup_repo(models_repo, GUIDE_POLICY % "")
    source = GitSource(str(models_repo.root))
    try:
        with pytest.raises(DriftCheckError, match="run 'q2q apply' first"):
            DriftChecker(engine, source, clock=clock).run()
    finally:
        source.close()


def test_check_overlapping_windows_error(engine: sa.Engine, checker: Any) -> None:
    drift = checker(WINDOW_POLICY.replace("2025-12-15T00:00:00Z", "2026-01-05T00:00:00Z"))

    with pytest.raises(DriftCheckError, match="drift policy 'windowed': the baseline window"):
        drift.run()


class WebhookServer:
    """A local HTTP server that stores the JSON bodies POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        bodies: list[dict[str, Any]] = []
        self.bodies = bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> WebhookServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


NOTIFY = ", {notify: {url_env: Q2Q_TEST_DRIFT_HOOK}}"


def test_notify_posts_slack_payload(engine: sa.Engine, checker: Any,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    drift = checker(GUIDE_POLICY % NOTIFY)
    load(engine, shares_rows(0.1, 100, start=WINDOW_START, span=7 * DAY))

    with WebhookServer() as server:
        monkeypatch.setenv("Q2Q_TEST_DRIFT_HOOK", server.url)
        [run] = drift.run()

    [body] = server.bodies
    assert body["text"].startswith(f"Drift alert for model {DRIFTING} (policy guide): 1 "
                                   "label/language groups over the alert threshold")
    assert "- confidence_increase / en: PSI 0.2700, JS " in body["text"]
    assert body["blocks"][0]["type"] == "section"
    assert body["modelId"] == DRIFTING
    assert run.actions[DRIFTING]["notifications"] == [
        {"urlEnv": "Q2Q_TEST_DRIFT_HOOK", "sent": True, "status": 200}]


def test_notify_failure_keeps_checks(engine: sa.Engine, checker: Any,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    drift = checker(GUIDE_POLICY % NOTIFY)
    load(engine, shares_rows(0.1, 100, start=WINDOW_START, span=7 * DAY))

    with WebhookServer(status=500) as server:
        monkeypatch.setenv("Q2Q_TEST_DRIFT_HOOK", server.url)
        drift.run()

    [alert] = stored(engine, alerts_only=True)
    [notification] = alert["actions"]["notifications"]
    assert notification["sent"] is False
    assert "Internal Server Error" in notification["error"]


def test_notify_without_variable(engine: sa.Engine, checker: Any,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("Q2Q_TEST_DRIFT_HOOK", raising=False)
    drift = checker(GUIDE_POLICY % NOTIFY)
    load(engine, shares_rows(0.1, 100, start=WINDOW_START, span=7 * DAY))

    [run] = drift.run()

    assert run.actions[DRIFTING]["notifications"] == [{
        "urlEnv": "Q2Q_TEST_DRIFT_HOOK", "sent": False,
        "error": "environment variable Q2Q_TEST_DRIFT_HOOK is not set"}]


def active_models(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(
            sa.select(model_registry.c.model_id).where(model_registry.c.active.is_(True))
        ).scalars())


def test_rollback_branch_deactivates_after_merge(
    engine: sa.Engine, checker: Any, models_repo: ModelsRepo, make_reconciler: Any,
) -> None:
    drift = checker(GUIDE_POLICY % ", rollback")
    load(engine, shares_rows(0.1, 100, start=WINDOW_START, span=7 * DAY))
    head_before = models_repo.repo.head.commit.hexsha

    [run] = drift.run()

    branch = f"q2q/rollback/{DRIFTING}"
    [alert] = stored(engine, alerts_only=True)
    assert alert["rollbackBranch"] == branch
    assert run.actions[DRIFTING]["rollback"]["pushed"] is False
    assert "no remote 'origin'" in run.actions[DRIFTING]["rollback"]["detail"]
    assert models_repo.repo.head.commit.hexsha == head_before
    assert active_models(engine) == [DRIFTING]
    commit = models_repo.repo.commit(branch)
    assert commit.parents[0].hexsha == head_before
    assert commit.message.startswith(f"Roll back {DRIFTING} to {PREVIOUS}\n")

    models_repo.repo.git.merge("--no-ff", "--no-edit", branch)
    make_reconciler().reconcile()

    assert active_models(engine) == [PREVIOUS]


def test_rollback_branch_pushed(
    engine: sa.Engine, checker: Any, models_repo: ModelsRepo, tmp_path: Path,
) -> None:
    remote = git.Repo.init(tmp_path / "remote.git", bare=True)
    models_repo.repo.create_remote("origin", str(tmp_path / "remote.git"))
    drift = checker(GUIDE_POLICY % ", rollback")
    load(engine, shares_rows(0.1, 100, start=WINDOW_START, span=7 * DAY))

    [run] = drift.run()

    branch = f"q2q/rollback/{DRIFTING}"
    assert run.actions[DRIFTING]["rollback"]["pushed"] is True
    assert remote.commit(branch).hexsha == models_repo.repo.commit(branch).hexsha


def test_rollback_existing_branch_unchanged(
    engine: sa.Engine, checker: Any, models_repo: ModelsRepo, clock: Clock,
) -> None:
    drift = checker(GUIDE_POLICY % ", rollback")
    load(engine, shares_rows(0.1, 100, start=WINDOW_START, span=7 * DAY))
    drift.run()
    branch = f"q2q/rollback/{DRIFTING}"
    first = models_repo.repo.commit(branch).hexsha
    clock.now += dt.timedelta(hours=1)

    [run] = drift.run()

    assert run.actions[DRIFTING]["rollback"]["created"] is False
    assert models_repo.repo.commit(branch).hexsha == first
