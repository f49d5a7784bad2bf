"""GitSource on real repositories: local, bare, and cloned from a file:// URL."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from reconciler.git_source import GitSource
from registry_state.errors import GitSourceError
from support.git_repo import ModelsRepo


def push_to_bare(models_repo: ModelsRepo, bare: Path) -> None:
    if "origin" not in [remote.name for remote in models_repo.repo.remotes]:
        models_repo.repo.create_remote("origin", str(bare))
    models_repo.repo.git.push("origin", "HEAD:refs/heads/main")


@pytest.fixture
def bare_repo(tmp_path: Path) -> Path:
    path = tmp_path / "remote.git"
    git.Repo.init(path, bare=True, initial_branch="main")
    return path


def test_url_clone_follows_default_branch(
    models_repo: ModelsRepo, bare_repo: Path, tmp_path: Path
) -> None:
    models_repo.write_spec("q2q-claude-v1")
    first = models_repo.commit("Add a model")
    push_to_bare(models_repo, bare_repo)

    source = GitSource(bare_repo.as_uri(), cache_dir=tmp_path / "cache")

    assert source.is_remote
    assert source.branch == "main"
    assert source.resolve().revision == first
    assert [e.path for e in source.list_tree(first, "models")] == ["models/q2q-claude-v1.yaml"]


def test_url_refresh_sees_new_commit(
    models_repo: ModelsRepo, bare_repo: Path, tmp_path: Path
) -> None:
    models_repo.write_spec("q2q-claude-v1")
    models_repo.commit("Add a model")
    push_to_bare(models_repo, bare_repo)
    source = GitSource(bare_repo.as_uri(), cache_dir=tmp_path / "cache")

    models_repo.write_spec("q2q-claude-v2")
    second = models_repo.commit("Add another model")
    push_to_bare(models_repo, bare_repo)
    source.refresh()

    assert source.resolve().revision == second


def test_second_open_reuses_cache(
    models_repo: ModelsRepo, bare_repo: Path, tmp_path: Path
) -> None:
    models_repo.write_spec("q2q-claude-v1")
    revision = models_repo.commit("Add a model")
    push_to_bare(models_repo, bare_repo)
    GitSource(bare_repo.as_uri(), cache_dir=tmp_path / "cache").close()

    reopened = GitSource(bare_repo.as_uri(), cache_dir=tmp_path / "cache")

    assert len(list((tmp_path / "cache").iterdir())) == 1
    assert reopened.resolve().revision == revision


def test_tree_ignores_working_tree(models_repo: ModelsRepo) -> None:
    models_repo.write_spec("q2q-claude-v1", description="committed")
    revision = models_repo.commit("Add a model")
    models_repo.write_spec("q2q-claude-v1", description="edited")

    source = GitSource(str(models_repo.root))
    content = source.read_file(revision, "models/q2q-claude-v1.yaml")

    assert content is not None
    assert b"committed" in content


def test_unknown_branch_error(models_repo: ModelsRepo) -> None:
    models_repo.commit("Start")
    source = GitSource(str(models_repo.root), branch="release")

    with pytest.raises(GitSourceError) as error:
        source.resolve()

    assert str(error.value) == (
        f"revision 'release' not found in '{models_repo.root}'; check --branch (branches: main)"
    )


def test_not_a_repository_error(tmp_path: Path) -> None:
    with pytest.raises(GitSourceError, match="is not a git repository"):
        GitSource(str(tmp_path))


def test_unreachable_url_error(tmp_path: Path) -> None:
    missing = (tmp_path / "missing.git").as_uri()

    with pytest.raises(GitSourceError, match="cannot clone"):
        GitSource(missing, cache_dir=tmp_path / "cache")
