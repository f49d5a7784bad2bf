"""The change-by-pull-request loop: author a change, merge it, apply it, roll it back.

Real: git, the spec files, the click commands, the reconciler and the
database (SQLite and PostgreSQL through the `engine` fixture). Merging a pull
request is a `git merge` into main in the same repository. Fake: only the
reconciler's clock. The authoring commands judge activation by the real
clock, so specs use past dates and scheduled cutovers a date in 2099.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from reconciler.reconcile import Reconciler
from registry_state import store
from registry_state.changes import ChangeKind
from registry_state.tables import audit_records, model_registry
from support.git_repo import Clock, ModelsRepo

DATA = Path(__file__).resolve().parents[1] / "data" / "authoring"
FUTURE = dt.datetime(2099, 2, 1, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def repo(models_repo: ModelsRepo, monkeypatch: pytest.MonkeyPatch) -> ModelsRepo:
    monkeypatch.chdir(models_repo.root)
    return models_repo


def run(*arguments: str) -> Result:
    from reconciler.cli.main import cli

    return CliRunner().invoke(cli, list(arguments), catch_exceptions=False)


def merge(repo: ModelsRepo, branch: str, *, fast_forward: bool = True) -> str:
    """Merge `branch` into main as a reviewed pull request would be, and return main's tip."""
    repo.repo.git.switch("main")
    if fast_forward:
        repo.repo.git.merge("--ff-only", branch)
    else:
        repo.repo.git.merge("--no-ff", "-m", f"Merge pull request from {branch}", branch)
    return repo.repo.head.commit.hexsha


def model_state(engine: sa.Engine) -> dict[str, tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(model_registry)).all()
    return {
        row.model_id: (row.active, row.declared_active, row.effective_from,
                       row.retired_at is not None, row.config_hash)
        for row in rows
    }


def active_ids(engine: sa.Engine) -> set[str]:
    return {model_id for model_id, state in model_state(engine).items() if state[0]}


def audit_trail(engine: sa.Engine) -> list[tuple[str, str, str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(audit_records).order_by(audit_records.c.id)).all()
    return [(row.revision, row.commit_subject, row.change, row.model_id) for row in rows]


def test_activate_apply_rollback_restores(
    repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine
) -> None:
    shutil.copy(DATA / "guide_models.yaml", repo.root / "models" / "models.yaml")
    first = repo.commit("Add the guide's models")
    reconciler: Reconciler = make_reconciler()
    reconciler.reconcile()
    before = model_state(engine)
    assert active_ids(engine) == {"q2q-claude-v1", "q2q-openai-v1"}

    activated = run("activate", "q2q-claude-v3-enhanced", "--commit")
    assert activated.exit_code == 0, activated.output
    activation = merge(repo, "q2q/activate-q2q-claude-v3-enhanced")
    reconciler.reconcile()
    assert active_ids(engine) == {"q2q-claude-v3-enhanced", "q2q-openai-v1"}

    rolled_back = run("rollback")
    assert rolled_back.exit_code == 0, rolled_back.output
    revert = merge(repo, f"q2q/rollback-{activation[:8]}")
    result = reconciler.reconcile()

    assert model_state(engine) == before
    assert result.revision == revert
    subject = "Activate q2q-claude-v3-enhanced, deactivate q2q-claude-v1"
    trail = audit_trail(engine)
    assert [entry for entry in trail if entry[0] == activation] == [
        (activation, subject, "deactivate", "q2q-claude-v1"),
        (activation, subject, "update", "q2q-claude-v1"),
        (activation, subject, "update", "q2q-claude-v3-enhanced"),
        (activation, subject, "activate", "q2q-claude-v3-enhanced"),
    ]
    assert [entry for entry in trail if entry[0] == revert] == [
        (revert, f'Revert "{subject}"', "deactivate", "q2q-claude-v3-enhanced"),
        (revert, f'Revert "{subject}"', "update", "q2q-claude-v1"),
        (revert, f'Revert "{subject}"', "update", "q2q-claude-v3-enhanced"),
        (revert, f'Revert "{subject}"', "activate", "q2q-claude-v1"),
    ]
    assert {entry[0] for entry in trail} == {first, activation, revert}
    with engine.connect() as connection:
        assert store.read_status(connection).last_applied_revision == revert


def test_rollback_output_and_message(repo: ModelsRepo) -> None:
    repo.write_spec("q2q-claude-v1", active=True, effective_from="2025-01-15")
    repo.write_spec("q2q-claude-v2", effective_from="2025-06-01",
                    thresholds={"risk_min_cues": "2"})
    repo.commit("Add the claude models")
    run("activate", "q2q-claude-v2", "--commit")
    activation = merge(repo, "q2q/activate-q2q-claude-v2")

    result = run("rollback")

    branch = f"q2q/rollback-{activation[:8]}"
    assert result.exit_code == 0, result.output
    assert result.output == (
        'Revert "Activate q2q-claude-v2, deactivate q2q-claude-v1":\n'
        "  < deactivate q2q-claude-v2 (spec set to inactive)\n"
        "  ~ update q2q-claude-v1: declared_active False -> True\n"
        "  ~ update q2q-claude-v2: declared_active True -> False\n"
        "  > activate q2q-claude-v1\n"
        "  claude: q2q-claude-v2 -> q2q-claude-v1 now (thresholds.risk_min_cues 2 -> 1)\n"
        f"Committed {repo.repo.head.commit.hexsha[:12]} on new branch '{branch}'. Next: push "
        f"it with 'git push -u origin {branch}' and open a pull request.\n"
    )
    assert repo.repo.active_branch.name == branch
    assert repo.repo.head.commit.message.startswith(
        'Revert "Activate q2q-claude-v2, deactivate q2q-claude-v1"\n\n'
        f"This reverts commit {activation}, the last change to models/.\n\n"
        "Changes to the models:\n  < deactivate q2q-claude-v2 (spec set to inactive)\n"
    )
    assert repo.repo.head.commit.parents[0].hexsha == activation


def test_scheduled_cutover_applied_at_instant(
    repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine, clock: Clock
) -> None:
    repo.write_spec("q2q-claude-v1", active=True, effective_from="2025-01-15")
    repo.write_spec("q2q-claude-v2", effective_from="2025-06-01")
    repo.commit("Add the claude models")
    reconciler: Reconciler = make_reconciler()
    reconciler.reconcile()

    scheduled = run("activate", "q2q-claude-v2", "--at", "2099-02-01T09:30:00Z", "--commit")
    assert scheduled.exit_code == 0, scheduled.output
    merge(repo, "q2q/activate-q2q-claude-v2")

    clock.now = FUTURE - dt.timedelta(seconds=1)
    before = reconciler.reconcile()
    assert active_ids(engine) == {"q2q-claude-v1"}
    assert before.next_cutover_at == FUTURE
    assert before.warnings == []

    clock.now = FUTURE
    at_cutover = reconciler.reconcile()

    assert active_ids(engine) == {"q2q-claude-v2"}
    assert [(c.kind, c.model_id, c.reason) for c in at_cutover.plan.changes] == [
        (ChangeKind.DEACTIVATE, "q2q-claude-v1", "superseded by a later active model"),
        (ChangeKind.ACTIVATE, "q2q-claude-v2", "effective_from 2099-02-01T09:30:00+00:00 reached"),
    ]
    assert [w.message for w in at_cutover.warnings] == [
        "'q2q-claude-v1' is superseded by 'q2q-claude-v2', which took effect later "
        "(2099-02-01T09:30:00+00:00); set 'active: false' here to say so"
    ]


def test_rollback_to_revision_restores_directory(
    repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine
) -> None:
    for name in ("a", "b", "c"):
        repo.write_spec(f"q2q-claude-{name}")
    repo.write_spec("q2q-claude-v1", active=True, effective_from="2025-01-15")
    good = repo.commit("Add four models")
    repo.write_spec("q2q-claude-v1", active=False, effective_from="2025-01-15")
    repo.write_spec("q2q-claude-v2", active=True, effective_from="2025-06-01")
    repo.commit("Switch to v2")
    repo.write_spec("q2q-claude-v3", effective_from="2025-07-01")
    repo.commit("Add v3")
    reconciler: Reconciler = make_reconciler()
    reconciler.reconcile()
    assert active_ids(engine) == {"q2q-claude-v2"}

    result = run("rollback", "--to", good[:10])

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Restore models/ as of {good[:12]}:\n")
    assert repo.repo.active_branch.name == f"q2q/restore-{good[:8]}"
    assert sorted(path.name for path in (repo.root / "models").iterdir()) == [
        "q2q-claude-a.yaml", "q2q-claude-b.yaml", "q2q-claude-c.yaml", "q2q-claude-v1.yaml"]
    assert repo.repo.git.diff(good, "HEAD", "--", "models") == ""
    merge(repo, f"q2q/restore-{good[:8]}")
    reconciler.reconcile()
    state = model_state(engine)
    assert active_ids(engine) == {"q2q-claude-v1"}
    assert state["q2q-claude-v2"][3] is True
    assert state["q2q-claude-v3"][3] is True


def test_rollback_reverts_merged_pull_request(
    repo: ModelsRepo, make_reconciler: Any, engine: sa.Engine
) -> None:
    repo.write_spec("q2q-claude-v1", active=True, effective_from="2025-01-15")
    repo.write_spec("q2q-claude-v2", effective_from="2025-06-01")
    repo.commit("Add the claude models")
    reconciler: Reconciler = make_reconciler()
    reconciler.reconcile()
    before = model_state(engine)
    repo.repo.git.switch("--create", "feature")
    run("new", "q2q-claude-v3", "--from", "q2q-claude-v2", "--threshold", "risk_min_cues=2",
        "--commit", "--branch", "feature-new")
    run("activate", "q2q-claude-v3", "--commit", "--branch", "feature-activate")
    merged = merge(repo, "feature-activate", fast_forward=False)
    reconciler.reconcile()
    assert active_ids(engine) == {"q2q-claude-v3"}

    result = run("rollback")

    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        'Revert "Merge pull request from feature-activate":\n'
        "  - retire q2q-claude-v3 (spec removed from git)\n"
    )
    merge(repo, f"q2q/rollback-{merged[:8]}")
    reconciler.reconcile()
    after = model_state(engine)
    assert {k: v for k, v in after.items() if k != "q2q-claude-v3"} == before
    assert after["q2q-claude-v3"][3] is True


def test_rollback_into_invalid_state_rejected(repo: ModelsRepo) -> None:
    repo.write_spec("q2q-claude-v1", active=True)
    repo.commit("Add v1")
    repo.write("models/q2q-claude-v1.yaml", "id: [unclosed\n")
    repo.commit("Break v1")
    repo.write_spec("q2q-claude-v1", active=True)
    fixed = repo.commit("Fix v1")

    result = run("rollback")

    assert result.exit_code == 1
    assert result.output.startswith(
        "error: the rollback would leave the specs invalid, so nothing was committed and branch "
        f"'q2q/rollback-{fixed[:8]}' was removed:\n  models/q2q-claude-v1.yaml:2:1: "
    )
    assert result.output.endswith("Roll back to another revision with 'q2q rollback --to REV'\n")
    assert repo.repo.active_branch.name == "main"
    assert repo.repo.head.commit.hexsha == fixed
    assert [head.name for head in repo.repo.heads] == ["main"]
    assert not repo.repo.is_dirty(untracked_files=True)


def test_rollback_conflict_leaves_tree_clean(repo: ModelsRepo) -> None:
    repo.write_spec("q2q-claude-v1", active=True)
    repo.write("CHANGELOG.md", "v1\n")
    repo.commit("Add v1")
    repo.write_spec("q2q-claude-v1", active=True, description="tuned")
    repo.write("CHANGELOG.md", "v1 tuned\n")
    tuned = repo.commit("Tune v1")
    repo.write("CHANGELOG.md", "v1 tuned, then documented\n")
    repo.commit("Document the tuning")

    result = run("rollback")

    assert result.exit_code == 1
    assert result.output.startswith(
        f"error: reverting {tuned[:12]} (Tune v1) conflicts with later commits: "
    )
    assert result.output.endswith(
        "run 'q2q rollback --to REV' to restore the spec directory as of an earlier revision "
        "instead\n"
    )
    assert repo.repo.active_branch.name == "main"
    assert [head.name for head in repo.repo.heads] == ["main"]
    assert not repo.repo.is_dirty(untracked_files=True)


def test_rollback_to_same_content_commits_nothing(repo: ModelsRepo) -> None:
    repo.write_spec("q2q-claude-v1", active=True)
    repo.commit("Add v1")
    repo.write("README.md", "docs only\n")
    head = repo.commit("Add a README")

    result = run("rollback", "--to", "HEAD~1")

    assert result.exit_code == 0
    assert result.output == "models/ already matches the rollback target; nothing to commit\n"
    assert repo.repo.head.commit.hexsha == head
    assert [head.name for head in repo.repo.heads] == ["main"]


@pytest.mark.parametrize(
    ("prepare", "arguments", "message"),
    [
        pytest.param("stage", [], "error: files are staged for commit (notes.txt); commit or "
                     "unstage them first ('git restore --staged PATH')\n", id="staged-files"),
        pytest.param("", ["--to", "no-such-rev"], "error: revision 'no-such-rev' not found; "
                     "pass a commit sha, tag or branch that 'git log' shows\n",
                     id="unknown-revision"),
        pytest.param("", ["--to", "HEAD~1"], "error: 'models' does not exist at {first}; pass "
                     "a revision that has the spec directory\n", id="revision-without-specs"),
    ],
)
def test_rollback_rejects_bad_start(
    repo: ModelsRepo, prepare: str, arguments: list[str], message: str
) -> None:
    repo.write("README.md", "first\n")
    first = repo.commit("Start without specs")
    repo.write_spec("q2q-claude-v1", active=True)
    repo.commit("Add v1")
    if prepare == "stage":
        repo.write("notes.txt", "staged\n")
        repo.repo.git.add("notes.txt")

    result = run("rollback", *arguments)

    assert result.exit_code == 1
    assert result.output == message.format(first=first[:12])
    assert [head.name for head in repo.repo.heads] == ["main"]


def test_shared_anchor_edit_rejected(repo: ModelsRepo) -> None:
    text = (DATA / "anchors_and_flow.yaml").read_text()
    repo.write("models/models.yaml", text)
    repo.commit("Add models with anchors")

    result = run("activate", "q2q-claude-v2", "--commit")

    assert result.exit_code == 1
    assert result.output == (
        "error: models/models.yaml:5: cannot set active of 'q2q-claude-v1' without also "
        "changing other values, because the value is shared through an anchor ('&') or a "
        "merge key ('<<'); write the value into this spec by hand, then run 'q2q validate'\n"
    )
    assert (repo.root / "models" / "models.yaml").read_text() == text
    assert repo.repo.active_branch.name == "main"


def test_rollback_of_first_commit_rejected(repo: ModelsRepo) -> None:
    repo.write_spec("q2q-claude-v1", active=True)
    first = repo.commit("Add v1")

    result = run("rollback")

    assert result.exit_code == 1
    assert result.output == (
        "error: the rollback would delete models/ and so retire every model; nothing was "
        f"committed and branch 'q2q/rollback-{first[:8]}' was removed. Roll back to a revision "
        "that has specs with 'q2q rollback --to REV'\n"
    )
    assert repo.repo.active_branch.name == "main"
    assert [head.name for head in repo.repo.heads] == ["main"]
    assert not repo.repo.is_dirty(untracked_files=True)


def test_rejected_commit_keeps_staged_rollback(repo: ModelsRepo) -> None:
    repo.write_spec("q2q-claude-v1", active=True)
    repo.commit("Add v1")
    repo.write_spec("q2q-claude-v2")
    added = repo.commit("Add v2")
    hook = repo.root / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'pre-commit: rejected by the test hook' >&2\nexit 1\n")
    hook.chmod(0o755)

    result = run("rollback")

    assert result.exit_code == 1
    assert "pre-commit: rejected by the test hook" in result.output
    assert result.output.endswith(
        f"The rollback is staged on branch 'q2q/rollback-{added[:8]}' (started from 'main') "
        "but not committed; fix the problem, then run 'git commit'\n"
    )
    assert repo.repo.active_branch.name == f"q2q/rollback-{added[:8]}"
    assert repo.repo.git.diff("--cached", "--name-only") == "models/q2q-claude-v2.yaml"
