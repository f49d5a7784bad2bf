"""`q2q new`, `activate` and `deactivate` on a real git repository, through the CLI.

Real: git, the spec files and the click commands; each test runs inside the
repository so the paths in messages read models/... Nothing is faked; the
commands judge activation by the real clock, so the specs use past dates and
`--at` a date in 2099.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli.main import cli
from support.git_repo import ModelsRepo, spec_yaml

DATA = Path(__file__).resolve().parents[1] / "data" / "authoring"
FUTURE = "2099-02-01T09:30:00Z"


@pytest.fixture
def repo(models_repo: ModelsRepo, monkeypatch: pytest.MonkeyPatch) -> ModelsRepo:
    monkeypatch.chdir(models_repo.root)
    models_repo.write_spec("q2q-claude-v1", active=True, effective_from="2025-01-15")
    models_repo.write_spec("q2q-claude-v2", effective_from="2025-06-01")
    models_repo.commit("Add the claude models")
    return models_repo


def run(*arguments: str) -> Result:
    return CliRunner().invoke(cli, list(arguments), catch_exceptions=False)


def read(repo: ModelsRepo, relative: str) -> str:
    return (repo.root / relative).read_text()


def head_files(repo: ModelsRepo) -> list[str]:
    return repo.repo.git.show("--name-only", "--format=", "HEAD").split()


def test_activate_edits_both_specs(repo: ModelsRepo) -> None:
    result = run("activate", "q2q-claude-v2")

    assert result.exit_code == 0, result.output
    assert result.output == (
        "Activate q2q-claude-v2, deactivate q2q-claude-v1:\n"
        "  models/q2q-claude-v2.yaml:15: q2q-claude-v2: active false -> true\n"
        "  models/q2q-claude-v1.yaml:15: q2q-claude-v1: active true -> false\n"
        "Next: review the edit with 'git diff', then commit it, or run the command again "
        "with --commit to commit it on a new branch.\n"
    )
    assert read(repo, "models/q2q-claude-v2.yaml") == spec_yaml(
        "q2q-claude-v2", active=True, effective_from="2025-06-01")
    assert read(repo, "models/q2q-claude-v1.yaml") == spec_yaml(
        "q2q-claude-v1", active=False, effective_from="2025-01-15")
    assert repo.repo.active_branch.name == "main"
    assert run("validate").exit_code == 0


def test_activate_commit_on_new_branch(repo: ModelsRepo) -> None:
    repo.write("notes.txt", "unrelated work in progress\n")
    repo.repo.git.add("notes.txt")
    repo.write("models/README.md", "edited, not staged\n")

    result = run("activate", "q2q-claude-v2", "--commit")

    assert result.exit_code == 0, result.output
    assert result.output.endswith(
        "Committed " + repo.repo.head.commit.hexsha[:12] + " on new branch "
        "'q2q/activate-q2q-claude-v2'. Next: push it with 'git push -u origin "
        "q2q/activate-q2q-claude-v2' and open a pull request.\n"
    )
    assert repo.repo.active_branch.name == "q2q/activate-q2q-claude-v2"
    assert repo.repo.head.commit.message == (
        "Activate q2q-claude-v2, deactivate q2q-claude-v1\n\n"
        "models/q2q-claude-v2.yaml: q2q-claude-v2: active false -> true\n"
        "models/q2q-claude-v1.yaml: q2q-claude-v1: active true -> false\n\n"
        "Made with 'q2q activate q2q-claude-v2'.\n"
    )
    assert sorted(head_files(repo)) == ["models/q2q-claude-v1.yaml", "models/q2q-claude-v2.yaml"]
    assert repo.repo.git.diff("--cached", "--name-only") == "notes.txt"
    assert repo.repo.head.commit.parents[0].hexsha == repo.repo.heads.main.commit.hexsha


def test_branch_option_implies_commit(repo: ModelsRepo) -> None:
    result = run("deactivate", "q2q-claude-v1", "--branch", "retire/claude")

    assert result.exit_code == 0, result.output
    assert repo.repo.active_branch.name == "retire/claude"
    assert repo.repo.head.commit.summary == "Deactivate q2q-claude-v1"
    assert "note: claude has no active model after this change" in result.output


def test_commit_rejects_dirty_spec(repo: ModelsRepo) -> None:
    dirty = spec_yaml("q2q-claude-v1", active=True, effective_from="2025-01-15",
                      description="local edit")
    repo.write("models/q2q-claude-v1.yaml", dirty)

    result = run("activate", "q2q-claude-v2", "--commit")

    assert result.exit_code == 1
    assert result.output == (
        "error: models/q2q-claude-v1.yaml has uncommitted changes, which the commit would mix "
        "with this one; commit or stash them first ('git stash'), or leave out --commit\n"
    )
    assert read(repo, "models/q2q-claude-v1.yaml") == dirty
    assert read(repo, "models/q2q-claude-v2.yaml") == spec_yaml(
        "q2q-claude-v2", effective_from="2025-06-01")
    assert repo.repo.active_branch.name == "main"


def test_commit_rejects_existing_branch(repo: ModelsRepo) -> None:
    repo.repo.create_head("q2q/activate-q2q-claude-v2")

    result = run("activate", "q2q-claude-v2", "--commit")

    assert result.exit_code == 1
    assert result.output == (
        "error: branch 'q2q/activate-q2q-claude-v2' already exists; pass --branch with another "
        "name, or delete it with 'git branch -D q2q/activate-q2q-claude-v2'\n"
    )
    assert "active: false" in read(repo, "models/q2q-claude-v2.yaml")


def test_commit_rejects_detached_head(repo: ModelsRepo) -> None:
    repo.repo.git.checkout("--detach")

    result = run("activate", "q2q-claude-v2", "--commit")

    assert result.exit_code == 1
    assert result.output == (
        "error: HEAD is detached; check out the branch to start from (for example 'git switch "
        "main'), then rerun\n"
    )


def test_schedule_validates_without_warnings(repo: ModelsRepo) -> None:
    result = run("activate", "q2q-claude-v2", "--at", FUTURE)
    validated = run("validate")

    assert result.exit_code == 0, result.output
    assert "  models/q2q-claude-v2.yaml:14: q2q-claude-v2: effective_from " \
        "2025-06-01T00:00:00Z -> 2099-02-01T09:30:00Z\n" in result.output
    assert read(repo, "models/q2q-claude-v2.yaml") == spec_yaml(
        "q2q-claude-v2", active=True, effective_from=FUTURE)
    assert "active: true" in read(repo, "models/q2q-claude-v1.yaml")
    assert validated.exit_code == 0
    assert validated.stdout == ""


@pytest.mark.parametrize(
    ("at", "message"),
    [
        pytest.param("2099-02-01T09:30:00", "has no UTC offset", id="no-offset"),
        pytest.param("next tuesday", "is not an ISO 8601 datetime", id="not-a-date"),
    ],
)
def test_schedule_rejects_bad_time(repo: ModelsRepo, at: str, message: str) -> None:
    result = CliRunner().invoke(cli, ["activate", "q2q-claude-v2", "--at", at])

    assert result.exit_code == 2
    assert "Invalid value for '--at'" in result.output
    assert message in result.output


def test_invalid_result_writes_nothing(repo: ModelsRepo) -> None:
    repo.write_spec("q2q-claude-v3", active=True, effective_from=f'"{FUTURE}"')
    before = read(repo, "models/q2q-claude-v2.yaml")

    result = run("activate", "q2q-claude-v2", "--at", FUTURE)

    assert result.exit_code == 1
    assert result.output.startswith(
        "error: 'q2q activate q2q-claude-v2 --at 2099-02-01T09:30:00Z' would leave the specs "
        "invalid, so no file was written:\n  models/q2q-claude-v2.yaml:1: active: two active "
        "claude models take effect at the same instant 2099-02-01T09:30:00+00:00"
    )
    assert read(repo, "models/q2q-claude-v2.yaml") == before


def test_invalid_directory_rejected(repo: ModelsRepo) -> None:
    repo.write("models/broken.yaml", "id: [unclosed\n")

    result = run("activate", "q2q-claude-v2")

    assert result.exit_code == 1
    assert result.output.startswith(
        "error: the specs under models have errors, so the change cannot be checked; fix them "
        "first (run 'q2q validate models'):\n  models/broken.yaml:2:1: "
    )


def test_new_copies_single_spec_file(repo: ModelsRepo) -> None:
    result = run("new", "q2q-claude-v3", "--from", "q2q-claude-v1",
                 "--threshold", "risk_min_cues=2", "--threshold", "confidence_increase=0.85",
                 "--prompt-version", "v3.0")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:6] == [
        "Add q2q-claude-v3, copied from q2q-claude-v1:",
        "  models/q2q-claude-v3.yaml:1: q2q-claude-v3: new spec copied from q2q-claude-v1",
        "  models/q2q-claude-v3.yaml:1: q2q-claude-v3: id q2q-claude-v1 -> q2q-claude-v3",
        "  models/q2q-claude-v3.yaml:15: q2q-claude-v3: active true -> false",
        "  models/q2q-claude-v3.yaml:13: q2q-claude-v3: thresholds.risk_min_cues 1 -> 2",
        "  models/q2q-claude-v3.yaml:6: q2q-claude-v3: thresholds.confidence_increase "
        "0.8 -> 0.85",
    ]
    assert read(repo, "models/q2q-claude-v3.yaml") == spec_yaml(
        "q2q-claude-v3", effective_from="2025-01-15", prompt_version="v3.0",
        thresholds={"risk_min_cues": "2", "confidence_increase": "0.85"},
    )
    assert "note: 'q2q-claude-v3' is inactive; run 'q2q activate q2q-claude-v3' when it is " \
        "ready\n" in result.output


def test_new_appends_to_models_list(repo: ModelsRepo) -> None:
    shutil.copy(DATA / "guide_models.yaml", repo.root / "models" / "models.yaml")
    for name in ("q2q-claude-v1", "q2q-claude-v2"):
        repo.remove(f"models/{name}.yaml")
    repo.commit("Use the guide's models file")
    before = read(repo, "models/models.yaml")

    result = run("new", "q2q-openai-v2", "--from", "q2q-openai-v1", "--commit")

    after = read(repo, "models/models.yaml")
    assert result.exit_code == 0, result.output
    assert after.startswith(before)
    assert after[len(before):].splitlines()[:3] == [
        "  - id: q2q-openai-v2", "    provider: openai", "    model: gpt-4o-2024-08-06",
    ]
    assert after.endswith("    active: false\n")
    assert repo.repo.head.commit.summary == "Add q2q-openai-v2, copied from q2q-openai-v1"
    assert run("validate").exit_code == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(["--threshold", "risk_min_cues"], "'risk_min_cues' is not NAME=VALUE",
                     id="no-equals"),
        pytest.param(["--threshold", "risk_min_cues=two"], "threshold risk_min_cues: 'two' is "
                     "not a number", id="not-a-number"),
        pytest.param(["--threshold", "risk_min_cues=true"], "'true' is not a number",
                     id="bool-not-a-number"),
    ],
)
def test_new_rejects_bad_threshold(repo: ModelsRepo, arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["new", "q2q-claude-v3", "--from", "q2q-claude-v1",
                                      *arguments])

    assert result.exit_code == 2
    assert message in result.output
    assert not (repo.root / "models" / "q2q-claude-v3.yaml").exists()


def test_new_existing_file_rejected(repo: ModelsRepo) -> None:
    repo.write("models/q2q-claude-v3.yaml", spec_yaml("q2q-claude-other"))

    result = run("new", "q2q-claude-v3", "--from", "q2q-claude-v1")

    assert result.exit_code == 1
    assert result.output == ("error: models/q2q-claude-v3.yaml already exists; pick another "
                             "id, or move that file\n")


def test_deactivate_nothing_to_change(repo: ModelsRepo) -> None:
    result = run("deactivate", "q2q-claude-v2", "--commit")

    assert result.exit_code == 0
    assert result.output == "'q2q-claude-v2' is already inactive; nothing to change\n"
    assert repo.repo.active_branch.name == "main"


def test_spec_dir_option(repo: ModelsRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo.root / "models")

    result = run("activate", "q2q-claude-v2", "--path", ".")

    assert result.exit_code == 0, result.output
    assert "  q2q-claude-v2.yaml:15: q2q-claude-v2: active false -> true\n" in result.output


@pytest.mark.parametrize(
    ("command", "phrase"),
    [
        pytest.param("new", "Copy the spec ID given by --from under NEW_ID", id="new"),
        pytest.param("activate", "deactivating its provider's current model", id="activate"),
        pytest.param("deactivate", "Deactivate MODEL_ID", id="deactivate"),
        pytest.param("rollback", "Roll the specs back in a new commit", id="rollback"),
    ],
)
def test_commands_have_help(command: str, phrase: str) -> None:
    result = run(command, "--help")

    assert result.exit_code == 0
    assert phrase in " ".join(result.output.split())


def test_new_commit_message_lists_edits(repo: ModelsRepo) -> None:
    result = run("new", "q2q-claude-v3", "--from", "q2q-claude-v2", "--commit",
                 "--description", "Candidate with stricter risk cues",
                 "--threshold", "risk_min_cues=2")

    assert result.exit_code == 0, result.output
    assert repo.repo.head.commit.message == (
        "Add q2q-claude-v3, copied from q2q-claude-v2\n\n"
        "models/q2q-claude-v3.yaml: q2q-claude-v3: new spec copied from q2q-claude-v2 "
        "(models/q2q-claude-v2.yaml)\n"
        "models/q2q-claude-v3.yaml: q2q-claude-v3: id q2q-claude-v2 -> q2q-claude-v3\n"
        "models/q2q-claude-v3.yaml: q2q-claude-v3: thresholds.risk_min_cues 1 -> 2\n"
        "models/q2q-claude-v3.yaml: q2q-claude-v3: description null -> "
        "Candidate with stricter risk cues\n\n"
        "'q2q-claude-v3' is inactive; run 'q2q activate q2q-claude-v3' when it is ready\n\n"
        "Made with 'q2q new q2q-claude-v3 --from q2q-claude-v2'.\n"
    )


def test_rejected_commit_keeps_edit(repo: ModelsRepo) -> None:
    hook = repo.root / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'pre-commit: rejected by the test hook' >&2\nexit 1\n")
    hook.chmod(0o755)

    result = run("activate", "q2q-claude-v2", "--commit")

    assert result.exit_code == 1
    assert "pre-commit: rejected by the test hook" in result.output
    assert result.output.endswith(
        "The edits are written on branch 'q2q/activate-q2q-claude-v2' (started from 'main') "
        "but not committed; fix the problem, then run 'git commit'\n"
    )
    assert repo.repo.active_branch.name == "q2q/activate-q2q-claude-v2"
    assert "active: true" in read(repo, "models/q2q-claude-v2.yaml")
