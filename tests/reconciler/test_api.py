"""The HTTP API against a running daemon, a real git repository and a real database."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient

from reconciler.api import ApiSettings, create_app
from reconciler.daemon import Daemon, DaemonSettings
from reconciler.git_source import GitSource
from reconciler.leadership import leader_lock_for
from reconciler.reconcile import ReconcileOptions, Reconciler
from registry_state.tables import model_registry
from support.git_repo import ModelsRepo

TOKEN = "test-token-1234"
SECRET = "webhook-secret"


def guide_registry(models_repo: ModelsRepo) -> str:
    models_repo.write_spec("q2q-claude-v1", effective_from="2025-01-15")
    models_repo.write_spec("q2q-claude-v2-multilingual", active=True)
    models_repo.write_spec("q2q-claude-v3-enhanced", effective_from='"2027-03-01T00:00:00Z"')
    models_repo.write_spec("q2q-openai-gpt4o-v1", provider="openai", model="gpt-4o",
                           active=True)
    return models_repo.commit("Add the guide's models")


def start_daemon(
    engine: sa.Engine, location: str, tmp_path: Path, **settings: Any
) -> tuple[Daemon, threading.Thread]:
    source = GitSource(location, cache_dir=tmp_path / "cache")
    reconciler = Reconciler(engine, source, options=ReconcileOptions(instance="api-test"))
    daemon = Daemon(
        reconciler,
        leader_lock=leader_lock_for(engine),
        settings=DaemonSettings(**({"scheduled": False} | settings)),
    )
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    return daemon, thread


@pytest.fixture
def api(models_repo: ModelsRepo, engine: sa.Engine, tmp_path: Path) -> Iterator[TestClient]:
    guide_registry(models_repo)
    daemon, thread = start_daemon(engine, str(models_repo.root), tmp_path)
    app = create_app(daemon, ApiSettings(api_token=TOKEN, webhook_secret=SECRET))
    with TestClient(app) as client:
        client.post("/q2q/registry/sync", headers={"Authorization": f"Bearer {TOKEN}"})
        yield client
    daemon.stop()
    thread.join(timeout=10)


def test_list_models_guide_shape(api: TestClient) -> None:
    response = api.get("/q2q/registry/models")

    body = response.json()
    assert response.status_code == 200
    assert body["success"] is True
    assert body["count"] == 4
    assert len(body["models"]) == 4
    assert {"id", "modelId", "active", "updatedAt"} <= set(body["models"][0])


def test_get_model_and_active(api: TestClient) -> None:
    model = api.get("/q2q/registry/models/q2q-claude-v3-enhanced").json()["model"]
    active = api.get("/q2q/registry/models/active/claude").json()["model"]

    assert model["modelId"] == "q2q-claude-v3-enhanced"
    assert model["active"] is False
    assert active["modelId"] == "q2q-claude-v2-multilingual"


def test_unknown_model_404(api: TestClient) -> None:
    response = api.get("/q2q/registry/models/q2q-missing")

    assert response.status_code == 404
    assert response.json() == {
        "success": False,
        "error": "Model not found",
        "message": "model 'q2q-missing' not found; list models with 'q2q models list'",
    }


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/q2q/registry/models/active/mistral", id="unknown-provider"),
        pytest.param("/q2q/registry/models/Not_An_Id", id="bad-id"),
        pytest.param("/q2q/registry/audit?limit=0", id="limit-zero"),
        pytest.param("/q2q/registry/audit?limit=ten", id="limit-text"),
    ],
)
def test_bad_parameters_422(api: TestClient, path: str) -> None:
    response = api.get(path)

    assert response.status_code == 422
    assert response.json()["success"] is False


def test_activate_answers_409(api: TestClient) -> None:
    response = api.post("/q2q/registry/models/q2q-claude-v1/activate",
                        headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 409
    assert "q2q activate q2q-claude-v1 --commit" in response.json()["message"]


def test_mutation_needs_token(api: TestClient) -> None:
    missing = api.post("/q2q/registry/sync")
    wrong = api.post("/q2q/registry/models/q2q-claude-v1/deactivate",
                     headers={"Authorization": "Bearer wrong"})

    assert missing.status_code == 401
    assert wrong.status_code == 401


def test_status_conditions(api: TestClient) -> None:
    body = api.get("/q2q/registry/status").json()

    conditions = {c["type"]: c for c in body["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Ready"]["reason"] == "ReconciliationSucceeded"
    assert conditions["Stalled"]["status"] == "False"
    assert body["lastAppliedRevision"] == body["lastAttemptedRevision"]


def test_sync_reports_invalid_commit(
    api: TestClient, models_repo: ModelsRepo
) -> None:
    models_repo.write("models/q2q-claude-v1.yaml", "id: q2q-claude-v1\nprovider: mistral\n")
    models_repo.commit("Break a spec")

    response = api.post("/q2q/registry/sync", headers={"Authorization": f"Bearer {TOKEN}"})
    conditions = {c["type"]: c for c in api.get("/q2q/registry/status").json()["conditions"]}

    problems = response.json()["problems"]
    assert response.status_code == 409
    assert {"path": "models/q2q-claude-v1.yaml", "line": 2, "column": 11, "field": "provider",
            "message": "invalid value 'mistral'; allowed values: 'claude', 'openai' or 'gemini'",
            "severity": "error"} in problems
    assert conditions["Stalled"]["status"] == "True"
    assert conditions["Stalled"]["reason"] == "InvalidSpecs"
    assert conditions["Ready"]["status"] == "False"


def test_audit_endpoint(api: TestClient) -> None:
    body = api.get("/q2q/registry/audit", params={"modelId": "q2q-openai-gpt4o-v1"}).json()

    assert [r["change"] for r in body["records"]] == ["activate", "create"]


def test_health_ready_metrics(api: TestClient) -> None:
    metrics = api.get("/metrics").text

    assert api.get("/healthz").text == "ok"
    assert api.get("/readyz").json() == {"ready": True}
    assert 'q2q_reconcile_passes_total{result="applied"} 1.0' in metrics
    assert 'q2q_active_models{provider="claude"} 1.0' in metrics
    assert 'q2q_changes_applied_total{kind="create"} 4.0' in metrics


def test_openapi_served(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]

    assert "/q2q/registry/models/{model_id}" in paths


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def remote(models_repo: ModelsRepo, tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    git.Repo.init(bare, bare=True, initial_branch="main")
    models_repo.repo.create_remote("origin", str(bare))
    return bare


def push(models_repo: ModelsRepo) -> None:
    models_repo.repo.git.push("origin", "HEAD:refs/heads/main")


def test_webhook_applies_push_quickly(
    models_repo: ModelsRepo, remote: Path, engine: sa.Engine, tmp_path: Path
) -> None:
    guide_registry(models_repo)
    push(models_repo)
    daemon, thread = start_daemon(engine, remote.as_uri(), tmp_path)
    app = create_app(daemon, ApiSettings(webhook_secret=SECRET))
    try:
        with TestClient(app) as client:
            assert client.post("/q2q/registry/sync").status_code == 200
            models_repo.write_spec("q2q-claude-v4", description="pushed")
            revision = models_repo.commit("Add v4")
            push(models_repo)
            body = json.dumps({"ref": "refs/heads/main", "after": revision}).encode()

            sent = time.monotonic()
            response = client.post("/webhooks/github", content=body, headers={
                "X-Hub-Signature-256": sign(body), "X-GitHub-Event": "push"})
            applied_after = wait_for_model(engine, "q2q-claude-v4", deadline_s=5) - sent
    finally:
        daemon.stop()
        thread.join(timeout=10)

    assert response.status_code == 202
    assert applied_after < 2.0


def test_webhook_bad_signature_401(
    models_repo: ModelsRepo, remote: Path, engine: sa.Engine, tmp_path: Path
) -> None:
    guide_registry(models_repo)
    push(models_repo)
    daemon, thread = start_daemon(engine, remote.as_uri(), tmp_path)
    app = create_app(daemon, ApiSettings(webhook_secret=SECRET))
    requested: list[str] = []
    real_request_pass = daemon.request_pass
    daemon.request_pass = lambda trigger: (requested.append(trigger),  # type: ignore[method-assign]
                                           real_request_pass(trigger))[1]
    try:
        with TestClient(app) as client:
            body = json.dumps({"ref": "refs/heads/main"}).encode()
            bad = client.post("/webhooks/github", content=body, headers={
                "X-Hub-Signature-256": sign(body, "other-secret"), "X-GitHub-Event": "push"})
            unsigned = client.post("/webhooks/github", content=body,
                                   headers={"X-GitHub-Event": "push"})
    finally:
        daemon.stop()
        thread.join(timeout=10)

    assert bad.status_code == 401
    assert unsigned.status_code == 401
    assert requested == []
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(
            model_registry)).scalar_one() == 0


def wait_for_model(engine: sa.Engine, model_id: str, *, deadline_s: float) -> float:
    """Poll until a model row exists; return the monotonic time it was first seen."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            found = connection.execute(
                sa.select(model_registry.c.id).where(model_registry.c.model_id == model_id)
            ).first()
        if found:
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"{model_id} was not applied within {deadline_s}s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


GUIDE_CURL_COMMANDS = [
    ("curl -X POST http://localhost:3005/q2q/registry/sync", 200),
    ("curl http://localhost:3005/q2q/registry/models", 200),
    ("curl http://localhost:3005/q2q/registry/models/q2q-claude-v3-enhanced", 200),
    ("curl -X POST http://localhost:3005/q2q/registry/models/q2q-claude-v3-enhanced/activate",
     409),
    ("curl -X POST http://localhost:3005/q2q/registry/models/q2q-claude-v2-multilingual/activate",
     409),
    ("curl -X POST http://localhost:3005/q2q/registry/models/q2q-claude-v1/deactivate", 409),
    ("curl http://localhost:3005/q2q/registry/models/active/claude", 200),
    ("curl -X POST http://localhost:3005/q2q/registry/models/q2q-claude-v1/activate", 409),
]


def test_guide_curl_examples(
    models_repo: ModelsRepo, engine: sa.Engine, tmp_path: Path
) -> None:
    guide_registry(models_repo)
    daemon, thread = start_daemon(engine, str(models_repo.root), tmp_path)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        create_app(daemon, ApiSettings()), host="127.0.0.1", port=port, log_config=None))
    server_thread = threading.Thread(target=server.run, daemon=True)
    server_thread.start()
    outputs = []
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        for command, expected_status in GUIDE_CURL_COMMANDS:
            # The guide's commands as written, with only the port of this test's server.
            argv = command.replace(":3005", f":{port}").split()
            argv[1:1] = ["-s", "-w", "\n%{http_code}"]
            completed = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                                       check=True)
            body, _, status = completed.stdout.rpartition("\n")
            outputs.append((command, int(status), json.loads(body), expected_status))
    finally:
        server.should_exit = True
        server_thread.join(timeout=10)
        daemon.stop()
        thread.join(timeout=10)

    for command, status, _body, expected_status in outputs:
        assert status == expected_status, command
    listed = outputs[1][2]
    assert (listed["success"], listed["count"]) == (True, 4)
    assert outputs[2][2]["model"]["modelId"] == "q2q-claude-v3-enhanced"
    assert outputs[6][2]["model"]["modelId"] == "q2q-claude-v2-multilingual"
    assert outputs[3][2]["success"] is False
