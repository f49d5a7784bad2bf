"""`q2q plan`, `apply`, `status`, `models` and `audit` through the real CLI entry point."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reconciler.cli.main import cli
from support.git_repo import ModelsRepo


@pytest.fixture
def run(models_repo: ModelsRepo, database_url: str) -> Any:
    runner = CliRunner()

    def invoke(*arguments: str) -> Result:
        common = ["--repo", str(models_repo.root), "--db", database_url]
        command = list(arguments)
        if command[0] in {"plan", "apply"}:
            command += common
        elif command[0] in {"status", "audit"} or command[:1] == ["models"]:
            command += ["--db", database_url]
        return runner.invoke(cli, command, catch_exceptions=False)

    return invoke


def test_plan_exit_codes(models_repo: ModelsRepo, run: Any) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.commit("Add a model")

    pending = run("plan")
    assert pending.exit_code == 2, pending.output
    assert "  + create q2q-claude-v1" in pending.output
    assert "  > activate q2q-claude-v1" in pending.output

    assert run("apply").exit_code == 0
    unchanged = run("plan")
    assert unchanged.exit_code == 0, unchanged.output
    assert unchanged.output.endswith(": no changes\n")

    models_repo.write("models/q2q-claude-v1.yaml", "id: [unclosed\n")
    models_repo.commit("Break the spec")
    broken = run("plan")
    assert broken.exit_code == 1
    assert "models/q2q-claude-v1.yaml:2:1" in broken.output


def test_plan_json_changes(models_repo: ModelsRepo, run: Any) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    revision = models_repo.commit("Add a model")

    result = run("plan", "--format", "json")

    document = json.loads(result.stdout)
    assert result.exit_code == 2
    assert document["revision"] == revision
    assert document["counts"] == {"create": 1, "activate": 1}
    assert [c["kind"] for c in document["changes"]] == ["create", "activate"]
    assert document["changes"][0]["modelId"] == "q2q-claude-v1"


def test_plan_writes_nothing(models_repo: ModelsRepo, run: Any) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.commit("Add a model")

    run("plan")
    listed = run("models", "list", "--format", "json")

    assert json.loads(listed.stdout)["count"] == 0


def test_apply_failure_shows_in_status(models_repo: ModelsRepo, run: Any) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    good = models_repo.commit("Add a model")
    run("apply")
    spec_path = models_repo.root / "models/q2q-claude-v1.yaml"
    spec_path.write_text(spec_path.read_text().replace("active: true", "active: yes"))
    bad = models_repo.commit("Write active as yes")

    failed = run("apply")
    status = json.loads(run("status", "--format", "json").stdout)

    assert failed.exit_code == 1
    assert "models/q2q-claude-v1.yaml:15:9: active: expected true or false, got 'yes'" \
        in failed.output
    assert status["lastAppliedRevision"] == good
    assert status["lastAttemptedRevision"] == bad
    assert status["syncStatus"] == "stalled (failed)"
    assert status["lastRun"]["status"] == "failed"


def test_models_commands_guide_shapes(models_repo: ModelsRepo, run: Any) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.write_spec("q2q-openai-v1", provider="openai", model="gpt-4o")
    models_repo.commit("Add two models")
    run("apply")

    listed = json.loads(run("models", "list", "--format", "json").stdout)
    shown = json.loads(run("models", "show", "q2q-openai-v1", "--format", "json").stdout)
    active = json.loads(run("models", "active", "claude", "--format", "json").stdout)
    missing = run("models", "show", "q2q-nope")

    assert listed["success"] is True
    assert listed["count"] == 2
    assert {"id", "modelId", "active", "updatedAt"} <= set(listed["models"][0])
    assert shown["model"]["modelName"] == "gpt-4o"
    assert active["model"]["modelId"] == "q2q-claude-v1"
    assert missing.exit_code == 1
    assert missing.output == (
        "error: model 'q2q-nope' not found; list models with 'q2q models list'\n"
    )


def test_audit_names_commit(models_repo: ModelsRepo, run: Any) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    revision = models_repo.commit("Add the first model")
    run("apply")

    document = json.loads(run("audit", "--model", "q2q-claude-v1", "--format", "json").stdout)

    assert [r["change"] for r in document["records"]] == ["activate", "create"]
    assert {r["revision"] for r in document["records"]} == {revision}
    assert {r["commitSubject"] for r in document["records"]} == {"Add the first model"}


def test_missing_repository_error(run: Any, tmp_path: Any, database_url: str) -> None:
    result = CliRunner().invoke(
        cli, ["apply", "--repo", str(tmp_path / "nowhere"), "--db", database_url]
    )

    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_missing_path_warns_not_self_heal(models_repo: ModelsRepo, run: Any) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.commit("Add a model")
    run("apply")

    planned = run("plan", "--path", "nowhere")
    refused = run("apply", "--path", "nowhere")
    status = run("status")

    assert planned.exit_code == 2
    assert "  - retire q2q-claude-v1 (spec removed from git)" in planned.stdout
    assert "warning: nowhere: the spec directory 'nowhere' does not exist at revision" in (
        planned.stderr
    )
    assert refused.exit_code == 1
    assert "Sync status:             stalled (refused)" in status.stdout
    assert "Last error:              the commit would retire 1 of 1 models" in status.stdout


def test_models_list_active_first(models_repo: ModelsRepo, run: Any) -> None:
    models_repo.write_spec("q2q-claude-a", effective_from="2025-01-15")
    models_repo.write_spec("q2q-claude-b", active=True)
    models_repo.commit("Add two models")
    run("apply")

    listed = json.loads(run("models", "list", "--format", "json").stdout)

    assert [m["modelId"] for m in listed["models"]] == ["q2q-claude-b", "q2q-claude-a"]
