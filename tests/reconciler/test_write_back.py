"""HTTP write-back: activate and deactivate requests become branch commits, not DB writes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import git
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from reconciler.api import ApiSettings, create_app
from reconciler.daemon import Daemon, DaemonSettings
from reconciler.git_source import GitSource
from reconciler.leadership import leader_lock_for
from reconciler.reconcile import ReconcileOptions, Reconciler
from reconciler.write_back import WriteBackSettings
from registry_state.tables import model_registry
from support.git_repo import ModelsRepo


def active_ids(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(
            sa.select(model_registry.c.model_id).where(model_registry.c.active.is_(True))
        ).scalars())


@pytest.fixture
def bare_remote(models_repo: ModelsRepo, tmp_path: Path) -> Path:
    models_repo.write_spec("q2q-claude-v1", active=True, effective_from="2025-01-15")
    models_repo.write_spec("q2q-claude-v2", effective_from="2025-06-01")
    models_repo.commit("Add two claude models")
    bare = tmp_path / "remote.git"
    git.Repo.init(bare, bare=True, initial_branch="main")
    models_repo.repo.create_remote("origin", str(bare))
    models_repo.repo.git.push("origin", "HEAD:refs/heads/main")
    return bare


@pytest.fixture
def client(
    bare_remote: Path, engine: sa.Engine, tmp_path: Path
) -> Iterator[tuple[TestClient, Daemon]]:
    source = GitSource(bare_remote.as_uri(), cache_dir=tmp_path / "cache")
    reconciler = Reconciler(engine, source, options=ReconcileOptions(instance="write-back"))
    daemon = Daemon(reconciler, leader_lock=leader_lock_for(engine),
                    settings=DaemonSettings(scheduled=False))
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    settings = ApiSettings(write_back=WriteBackSettings(enabled=True))
    with TestClient(create_app(daemon, settings)) as test_client:
        assert test_client.post("/q2q/registry/sync").status_code == 200
        yield test_client, daemon
    daemon.stop()
    thread.join(timeout=10)


def test_activate_opens_pushed_branch(
    client: tuple[TestClient, Daemon], bare_remote: Path, engine: sa.Engine
) -> None:
    test_client, _daemon = client

    response = test_client.post("/q2q/registry/models/q2q-claude-v2/activate")

    body = response.json()
    assert response.status_code == 202
    assert body["branch"] == "q2q/activate/q2q-claude-v2"
    assert body["pushed"] is True
    remote = git.Repo(bare_remote)
    assert remote.commit("refs/heads/q2q/activate/q2q-claude-v2").hexsha == body["commit"]
    changed = remote.git.diff("--name-only", "main", body["commit"]).split()
    assert changed == ["models/q2q-claude-v1.yaml", "models/q2q-claude-v2.yaml"]
    assert active_ids(engine) == {"q2q-claude-v1"}


def test_merged_branch_applies_activation(
    client: tuple[TestClient, Daemon], bare_remote: Path, engine: sa.Engine
) -> None:
    test_client, _daemon = client
    commit = test_client.post("/q2q/registry/models/q2q-claude-v2/activate").json()["commit"]

    remote = git.Repo(bare_remote)
    remote.git.update_ref("refs/heads/main", commit)  # a fast-forward merge of the branch
    synced = test_client.post("/q2q/registry/sync")

    assert synced.status_code == 200
    assert active_ids(engine) == {"q2q-claude-v2"}


def test_second_request_reuses_branch(client: tuple[TestClient, Daemon]) -> None:
    test_client, _daemon = client
    first = test_client.post("/q2q/registry/models/q2q-claude-v1/deactivate").json()

    second = test_client.post("/q2q/registry/models/q2q-claude-v1/deactivate").json()

    assert first["created"] is True
    assert second["created"] is False
    assert second["commit"] == first["commit"]


def test_activate_active_model_409(client: tuple[TestClient, Daemon]) -> None:
    test_client, _daemon = client

    response = test_client.post("/q2q/registry/models/q2q-claude-v1/activate")

    assert response.status_code == 409
    assert response.json()["error"] == "Cannot activate the model"


def test_write_back_off_answers_409(
    bare_remote: Path, engine: sa.Engine, tmp_path: Path
) -> None:
    source = GitSource(bare_remote.as_uri(), cache_dir=tmp_path / "cache")
    daemon = Daemon(Reconciler(engine, source), leader_lock=leader_lock_for(engine),
                    settings=DaemonSettings(scheduled=False))
    daemon.reconciler.reconcile()
    with TestClient(create_app(daemon, ApiSettings())) as test_client:
        response = test_client.post("/q2q/registry/models/q2q-claude-v2/activate")

    assert response.status_code == 409
    assert "q2q activate q2q-claude-v2 --commit" in response.json()["message"]
    assert "q2q/activate/q2q-claude-v2" not in [h.name for h in git.Repo(bare_remote).heads]
