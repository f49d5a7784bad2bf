"""The /q2q/eval endpoints against a daemon, a real git repository, a real database and a
fake provider reached through the real SDK."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from test_api import guide_registry, start_daemon

from reconciler.api import ApiSettings, create_app
from support.eval_fixtures import COUNT_LABELS, PROBABILITY_LABELS, PROMPT, ROWS, dataset_csv
from support.fake_providers import FakeProvider, keyword_provider
from support.git_repo import ModelsRepo
from support.provider_tests import DUMMY_KEYS

TOKEN = "eval-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    fake = FakeProvider(keyword_provider(probability=PROBABILITY_LABELS, count=COUNT_LABELS))
    with fake.running():
        for name, value in DUMMY_KEYS.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        yield fake


@pytest.fixture
def api(models_repo: ModelsRepo, engine: sa.Engine, tmp_path: Path) -> Iterator[TestClient]:
    models_repo.write("prompts/v2.0.txt", PROMPT)
    guide_registry(models_repo)
    daemon, thread = start_daemon(engine, str(models_repo.root), tmp_path)
    app = create_app(daemon, ApiSettings(api_token=TOKEN))
    with TestClient(app) as client:
        client.post("/q2q/registry/sync", headers=AUTH)
        yield client
    daemon.stop()
    thread.join(timeout=10)


def upload(api: TestClient, content: bytes, name: str = "v3_evaluation") -> Any:
    return api.post("/q2q/eval/upload", headers=AUTH, data={"name": name},
                    files={"file": ("test_dataset.csv", content, "text/csv")})


def wait_for_run(run_id: str) -> None:
    for thread in threading.enumerate():
        if thread.name == f"eval-{run_id}":
            thread.join(timeout=30)


def test_upload_run_results_guide_flow(api: TestClient, server: FakeProvider) -> None:
    uploaded = upload(api, dataset_csv(ROWS).encode())
    assert uploaded.status_code == 201, uploaded.text
    dataset_id = uploaded.json()["datasetId"]
    assert uploaded.json()["dataset"]["rowCount"] == 10

    started = api.post("/q2q/eval/run", headers=AUTH,
                       json={"datasetId": dataset_id, "modelId": "q2q-claude-v2-multilingual"})
    assert started.status_code == 202, started.text
    run_id = started.json()["runId"]
    assert started.json()["resultsUrl"] == f"/q2q/eval/results/{run_id}"
    wait_for_run(run_id)

    response = api.get(f"/q2q/eval/results/{run_id}")
    assert response.status_code == 200
    run = response.json()["run"]
    assert run["status"] == "completed"
    assert run["modelId"] == "q2q-claude-v2-multilingual"
    assert run["providerCalls"] == 10
    assert run["metrics"]["slices"]["es"]["labels"]["confidence_increase"]["support"] == 1
    assert server.requests[0].body["model"] == "claude-3-5-sonnet-20241022"


def test_upload_bad_csv_400(api: TestClient) -> None:
    response = upload(api, b"text,language\nhello,en\n")
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert body["error"] == "Invalid dataset"
    assert body["problems"][0].startswith("line 1: missing columns: confidence_increase")


def test_upload_needs_token(api: TestClient) -> None:
    response = api.post("/q2q/eval/upload", data={"name": "x"},
                        files={"file": ("a.csv", b"text\n", "text/csv")})
    assert response.status_code == 401


def test_run_unknown_dataset_404(api: TestClient) -> None:
    response = api.post("/q2q/eval/run", headers=AUTH,
                        json={"datasetId": "missing", "modelId": "q2q-claude-v1"})
    assert response.status_code == 404
    assert response.json()["error"] == "Dataset not found"


def test_run_unknown_model_404(api: TestClient) -> None:
    dataset_id = upload(api, dataset_csv(ROWS).encode()).json()["datasetId"]
    response = api.post("/q2q/eval/run", headers=AUTH,
                        json={"datasetId": dataset_id, "modelId": "q2q-missing"})
    assert response.status_code == 404


def test_run_without_key_400(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    dataset_id = upload(api, dataset_csv(ROWS).encode()).json()["datasetId"]
    response = api.post("/q2q/eval/run", headers=AUTH,
                        json={"datasetId": dataset_id, "modelId": "q2q-claude-v1"})
    assert response.status_code == 400
    assert "ANTHROPIC_API_KEY is not set" in response.json()["message"]


def test_results_unknown_run_404(api: TestClient) -> None:
    response = api.get("/q2q/eval/results/6c1f2a9e-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.json()["error"] == "Run not found"
