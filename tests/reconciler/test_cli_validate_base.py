"""`q2q validate --base REV`: the pull request checks that need the base revision.

Real: git repositories in a temporary directory, the spec files and the click
command, run from the repository root so paths read models/... Nothing is
faked; one test wraps the loader to count the blobs that history search parses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reconciler.authoring import base_revision
from reconciler.cli.main import cli
from support.git_repo import ModelsRepo


@pytest.fixture
def repo(models_repo: ModelsRepo, monkeypatch: pytest.MonkeyPatch) -> ModelsRepo:
    monkeypatch.chdir(models_repo.root)
    models_repo.write_spec("q2q-claude-v1", active=True, effective_from="2025-01-15")
    models_repo.write_spec("q2q-claude-v2", effective_from="2025-06-01")
    models_repo.commit("Add the claude models")
    return models_repo


def validate(*arguments: str) -> Result:
    return CliRunner().invoke(cli, ["validate", *arguments], catch_exceptions=False)


def test_threshold_change_rejected(repo: ModelsRepo) -> None:
    base = repo.repo.head.commit.hexsha
    repo.write_spec("q2q-claude-v2", effective_from="2025-06-01",
                    thresholds={"risk_min_cues": "2", "confidence_increase": "0.85"})

    result = validate("--base", "main")

    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == (
        "models/q2q-claude-v2.yaml:1: thresholds: 'q2q-claude-v2' is a recorded model (at base "
        f"{base[:12]}, models/q2q-claude-v2.yaml:1) and its identity cannot change (thresholds: "
        "confidence_increase 0.8 -> 0.85, risk_min_cues 1 -> 2); an id is never reused for "
        "another configuration, so restore the recorded values and add the new configuration "
        "under a new id"
    )


def test_checks_only_against_base(repo: ModelsRepo) -> None:
    repo.write_spec("q2q-claude-v2", effective_from="2025-06-01", model="claude-next")

    plain = validate()
    with_base = validate("--base", "main")

    assert plain.exit_code == 0
    assert with_base.exit_code == 1
    assert "(model: 'claude-3-5-sonnet-20241022' -> 'claude-next')" in with_base.stdout


def test_retired_id_reused_rejected(repo: ModelsRepo) -> None:
    repo.remove("models/q2q-claude-v2.yaml")
    retired = repo.commit("Retire v2")
    repo.write_spec("q2q-claude-v2", effective_from="2025-06-01",
                    model="claude-3-opus-20240229")

    result = validate("--base", "main")

    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == (
        "models/q2q-claude-v2.yaml:1: model: 'q2q-claude-v2' is a recorded retired model "
        f"(removed in {retired[:12]}, last at models/q2q-claude-v2.yaml:1) and its identity "
        "cannot change (model: 'claude-3-5-sonnet-20241022' -> 'claude-3-opus-20240229'); an id "
        "is never reused for another configuration, so restore the recorded values and add the "
        "new configuration under a new id"
    )


def test_retired_id_in_models_file(repo: ModelsRepo) -> None:
    item = (
        "  - id: {id}\n    provider: claude\n    model: claude-3-5-sonnet-20241022\n"
        "    prompt_version: v2.0\n    thresholds: {{confidence_increase: 0.8, "
        "confidence_decrease: 0.8, belonging_increase: 0.8, belonging_decrease: 0.8, "
        "language_comfort_high: 0.9, language_comfort_low: 0.2, employability_min_signals: 1, "
        "risk_min_cues: 1}}\n    effective_from: 2025-01-15\n    active: false\n"
    )
    repo.write("models/more.yaml", "models:\n" + item.format(id="q2q-claude-v1.5")
               + item.format(id="q2q-claude-v1.6"))
    repo.commit("Add a models file")
    repo.write("models/more.yaml", "models:\n" + item.format(id="q2q-claude-v1.6"))
    retired = repo.commit("Retire v1.5")
    repo.write_spec("q2q-claude-v1.5", effective_from="2025-01-15", model="claude-other")

    result = validate("--base", "main")

    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == (
        "models/q2q-claude-v1.5.yaml:1: model: 'q2q-claude-v1.5' is a recorded retired model "
        f"(removed in {retired[:12]}, last at models/more.yaml:2) and its identity cannot "
        "change (model: 'claude-3-5-sonnet-20241022' -> 'claude-other'); an id is never reused "
        "for another configuration, so restore the recorded values and add the new "
        "configuration under a new id"
    )


def test_restored_id_passes(repo: ModelsRepo) -> None:
    repo.remove("models/q2q-claude-v2.yaml")
    repo.commit("Retire v2")
    repo.write_spec("q2q-claude-v2", effective_from="2025-06-01")

    result = validate("--base", "main")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-2:] == [
        f'Changes against base {repo.repo.head.commit.hexsha[:12]} ("Retire v2"):',
        "  + restore q2q-claude-v2 (spec restored in git)",
    ]


def test_summary_names_cutover_thresholds(repo: ModelsRepo) -> None:
    base = repo.repo.head.commit.hexsha
    repo.write_spec("q2q-claude-v1", effective_from="2025-01-15")
    repo.write_spec("q2q-claude-v3", active=True, effective_from="2025-09-01",
                    thresholds={"risk_min_cues": "2"})
    repo.write_spec("q2q-claude-v4", active=True, effective_from='"2099-02-01T09:30:00Z"')

    result = validate("--base", base[:10])

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f'Changes against base {base[:12]} ("Add the claude models"):\n'
        "  < deactivate q2q-claude-v1 (spec set to inactive)\n"
        "  + create q2q-claude-v3\n"
        "  + create q2q-claude-v4\n"
        "  ~ update q2q-claude-v1: declared_active True -> False\n"
        "  > activate q2q-claude-v3\n"
        "  claude: q2q-claude-v1 -> q2q-claude-v3 now (thresholds.risk_min_cues 1 -> 2)\n"
        "  claude: q2q-claude-v3 -> q2q-claude-v4 at 2099-02-01T09:30:00Z "
        "(thresholds.risk_min_cues 2 -> 1)\n"
    )


def test_no_changes_summary(repo: ModelsRepo) -> None:
    result = validate("--base", "HEAD")

    assert result.exit_code == 0
    assert result.stdout == (
        f'Changes against base {repo.repo.head.commit.hexsha[:12]} ("Add the claude models"): '
        "none to the models\n"
    )


def test_json_includes_base(repo: ModelsRepo) -> None:
    repo.write_spec("q2q-claude-v3", effective_from="2025-09-01")

    result = validate("--base", "main", "--format", "json")

    document = json.loads(result.stdout)
    assert document["valid"] is True
    assert document["base"]["revision"] == repo.repo.head.commit.hexsha
    assert document["base"]["subject"] == "Add the claude models"
    assert document["base"]["counts"] == {"create": 1}
    assert document["base"]["changes"][0]["modelId"] == "q2q-claude-v3"
    assert document["base"]["cutovers"] == []


def test_unknown_base_rejected(repo: ModelsRepo) -> None:
    result = CliRunner().invoke(cli, ["validate", "--base", "origin/main"])

    assert result.exit_code == 1
    assert result.output == (
        f"error: base revision 'origin/main' not found in {repo.root.resolve()}; fetch it first "
        "(for example 'git fetch origin main'; in GitHub Actions, check out with "
        "fetch-depth: 0)\n"
    )


def test_detached_head_checkout_works(repo: ModelsRepo) -> None:
    repo.write_spec("q2q-claude-v3", effective_from="2025-09-01")
    repo.commit("Add v3")
    repo.repo.git.checkout("--detach")

    result = validate("--base", "HEAD~1")

    assert result.exit_code == 0, result.output
    assert "  + create q2q-claude-v3" in result.stdout


def test_history_search_parses_few_blobs(
    repo: ModelsRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.remove("models/q2q-claude-v2.yaml")
    repo.commit("Retire v2")
    for number in range(40):
        repo.write_spec(f"q2q-claude-x{number}", effective_from="2025-02-01")
        repo.commit(f"Add x{number}")
    repo.write_spec("q2q-claude-v2", effective_from="2025-06-01", prompt_version="v9.0")
    parsed: list[str] = []
    real_load = base_revision.load_spec_file

    def counting_load(source: Any, spec_model: Any) -> Any:
        parsed.append(source.path)
        return real_load(source, spec_model)

    monkeypatch.setattr(base_revision, "load_spec_file", counting_load)

    result = validate("--base", "main")

    assert result.exit_code == 1
    assert "(prompt_version: 'v2.0' -> 'v9.0')" in result.stdout
    assert parsed == ["models/q2q-claude-v2.yaml"]


def test_no_new_ids_skip_history(repo: ModelsRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    searched: list[Any] = []
    real_search = base_revision.retired_specs

    def recording_search(*args: Any, **kwargs: Any) -> Any:
        searched.append(kwargs["ids"])
        return real_search(*args, **kwargs)

    monkeypatch.setattr(base_revision, "retired_specs", recording_search)

    result = validate("--base", "main")

    assert result.exit_code == 0
    assert searched == [set()]
