"""`POST /q2q/predictions`, `GET /q2q/drift/checks` and `/alerts`, and the drift schedules."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from fastapi.testclient import TestClient

from reconciler.api import ApiSettings, create_app
from reconciler.daemon import Daemon, DaemonSettings
from reconciler.drift_check import DriftChecker
from reconciler.drift_scheduler import DriftScheduler
from reconciler.git_source import GitSource
from reconciler.leadership import leader_lock_for
from reconciler.reconcile import ReconcileOptions, Reconciler
from registry_state import drift_store
from support.git_repo import Clock, ModelsRepo

TOKEN = "test-token-5678"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POLICY = """\
policies:
  - id: guide
    baseline:
      distribution: {positive: 0.30, negative: 0.70}
    min_sample_size: 10
    schedule: "0 6 * * *"
"""


def body(count: int, *, positives: int, start: int = 0, **fields: Any) -> dict[str, Any]:
    created = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    return {"predictions": [
        {"modelId": "q2q-claude-v2-multilingual", "provider": "claude", "language": "en",
         "label": "confidence_increase", "score": 0.5, "positive": index < positives,
         "createdAt": created, "requestId": f"req-{start + index}"} | fields
        for index in range(count)
    ]}


@pytest.fixture
def daemon(models_repo: ModelsRepo, engine: sa.Engine, tmp_path: Path) -> Iterator[Daemon]:
    models_repo.write_spec("q2q-claude-v2-multilingual", active=True)
    models_repo.write("policies/drift.yaml", POLICY)
    models_repo.commit("Add a model and a drift policy")
    source = GitSource(str(models_repo.root), cache_dir=tmp_path / "cache")
    reconciler = Reconciler(engine, source, options=ReconcileOptions(instance="drift-test"))
    reconciler.reconcile()
    daemon = Daemon(reconciler, leader_lock=leader_lock_for(engine),
                    settings=DaemonSettings(scheduled=False))
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    yield daemon
    daemon.stop()
    thread.join(timeout=10)
    source.close()


@pytest.fixture
def api(daemon: Daemon) -> Iterator[TestClient]:
    with TestClient(create_app(daemon, ApiSettings(api_token=TOKEN))) as client:
        yield client


def test_post_predictions_idempotent(api: TestClient) -> None:
    first = api.post("/q2q/predictions", json=body(20, positives=2), headers=AUTH)
    again = api.post("/q2q/predictions", json=body(21, positives=2), headers=AUTH)

    assert first.status_code == 200, first.text
    assert first.json() == {"success": True, "received": 20, "inserted": 20, "duplicates": 0}
    assert again.json() == {"success": True, "received": 21, "inserted": 1, "duplicates": 20}


def test_post_predictions_bad_row_stores_nothing(api: TestClient, engine: sa.Engine) -> None:
    payload = body(3, positives=1)
    payload["predictions"][2]["score"] = "high"

    response = api.post("/q2q/predictions", json=payload, headers=AUTH)

    assert response.status_code == 422
    assert response.json() == {
        "success": False, "error": "Invalid prediction",
        "message": "predictions[2].score: expected a number in [0, 1] or nothing, got 'high'; "
                   "nothing was stored",
        "index": 2, "field": "score",
    }
    with engine.connect() as connection:
        assert drift_store.list_checks(connection) == []
        assert connection.execute(sa.text("SELECT count(*) FROM predictions")).scalar_one() == 0


def test_post_predictions_needs_token(api: TestClient) -> None:
    response = api.post("/q2q/predictions", json=body(1, positives=1))

    assert response.status_code == 401


def test_post_predictions_empty_body(api: TestClient) -> None:
    response = api.post("/q2q/predictions", json={"rows": []}, headers=AUTH)

    assert response.status_code == 422
    assert "with at least one prediction" in response.json()["message"]


def test_drift_checks_and_alerts(api: TestClient, daemon: Daemon, models_repo: ModelsRepo,
                                 tmp_path: Path) -> None:
    api.post("/q2q/predictions", json=body(20, positives=2), headers=AUTH)
    source = GitSource(str(models_repo.root), cache_dir=tmp_path / "cache")
    try:
        DriftChecker(daemon.engine, source).run()
    finally:
        source.close()

    checks = api.get("/q2q/drift/checks?limit=50").json()
    alerts = api.get("/q2q/drift/alerts?limit=20").json()

    assert checks["success"] is True
    assert checks["count"] == 1
    check = checks["checks"][0]
    assert {"id", "checkDate", "label", "language", "psiScore", "jsScore", "alertTriggered",
            "baselineDistribution", "currentDistribution", "sampleSize",
            "createdAt"} <= set(check)
    assert check["status"] == "alert"
    assert alerts["count"] == 1
    assert alerts["alerts"][0]["id"] == check["id"]


def test_drift_checks_bad_limit(api: TestClient) -> None:
    assert api.get("/q2q/drift/checks?limit=0").status_code == 422
    assert api.get("/q2q/drift/alerts?limit=many").status_code == 422


def test_scheduler_jobs_follow_policies(engine: sa.Engine, models_repo: ModelsRepo,
                                        tmp_path: Path) -> None:
    models_repo.write_spec("q2q-claude-v2-multilingual", active=True)
    models_repo.write("policies/drift.yaml", POLICY)
    first = models_repo.commit("Add a drift policy")
    source = GitSource(str(models_repo.root), cache_dir=tmp_path / "cache")
    scheduler = BackgroundScheduler(timezone=dt.UTC)
    scheduler.start(paused=True)
    drift = DriftScheduler(scheduler, lambda: DriftChecker(engine, source, clock=Clock()),
                           is_leader=lambda: True)
    try:
        drift.sync(first)
        job = scheduler.get_job("drift:guide")
        assert drift.schedules == {"guide": "0 6 * * *"}
        assert str(job.trigger) == "cron[month='*', day='*', day_of_week='*', hour='6', " \
            "minute='0']"

        models_repo.write("policies/drift.yaml", POLICY.replace("0 6 * * *", "30 * * * *")
                          .replace("id: guide", "id: hourly"))
        second = models_repo.commit("Replace the policy")
        drift.sync(second)

        assert drift.schedules == {"hourly": "30 * * * *"}
        assert scheduler.get_job("drift:guide") is None
        assert scheduler.get_job("drift:hourly") is not None

        models_repo.write("policies/drift.yaml", "policies:\n  - id: Bad Id\n")
        drift.sync(models_repo.commit("Break the policy file"))

        assert drift.schedules == {"hourly": "30 * * * *"}
    finally:
        scheduler.shutdown(wait=False)
        source.close()


def test_scheduler_follower_skips() -> None:
    calls: list[str] = []

    class Recording:
        def run(self, *, policy_id: str) -> list[Any]:
            calls.append(policy_id)
            return []

    leading = False
    drift = DriftScheduler(None, lambda: Recording(),  # type: ignore[arg-type, return-value]
                           is_leader=lambda: leading)
    drift.run_policy("guide")
    leading = True
    drift.run_policy("guide")

    assert calls == ["guide"]


def test_daemon_schedules_policies(daemon: Daemon, models_repo: ModelsRepo) -> None:
    # A daemon with scheduling on registers the policies of the applied revision.
    scheduled = Daemon(daemon.reconciler, leader_lock=daemon.leader_lock,
                       settings=DaemonSettings(scheduled=True, interval_s=3600))
    thread = threading.Thread(target=scheduled.run, daemon=True)
    thread.start()
    try:
        ticket = scheduled.request_pass("sync")
        assert ticket.wait(30)
        assert scheduled.drift.schedules == {"guide": "0 6 * * *"}
    finally:
        scheduled.stop()
        thread.join(timeout=10)
