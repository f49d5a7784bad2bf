"""Branches, commits and reverts in the models repository, for the authoring commands.

Input: a path inside a git working tree. Each command starts a new branch at
the checked-out commit, switches to it and adds one commit, so no existing
commit is rewritten. Errors from git become `GitWriteError` with the next step
to take. The CLI commands `new`, `activate`, `deactivate` (with `--commit`)
and `rollback` call it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import git

from registry_state.errors import GitWriteError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommitRef:
    """A commit: its sha, subject and number of parents (2 or more for a merge)."""

    sha: str
    subject: str
    parent_count: int = 1

    @property
    def short(self) -> str:
        return self.sha[:12]


class GitWorkspace:
    """The git working tree that contains a spec directory."""

    def __init__(self, path: Path) -> None:
        try:
            self.repo = git.Repo(path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise GitWriteError(
                f"'{path}' is not inside a git repository; run 'git init' and commit the "
                "specs first, or leave out --commit"
            ) from None
        if self.repo.bare or self.repo.working_tree_dir is None:
            raise GitWriteError(f"'{path}' is in a bare repository, which has no working tree")
        self.root = Path(self.repo.working_tree_dir).resolve()

    def close(self) -> None:
        self.repo.close()

    def _git(self, *arguments: str) -> str:
        try:
            output: str = self.repo.git.execute(["git", *arguments])
            return output
        except git.GitCommandError as error:
            raise GitWriteError(f"'git {' '.join(arguments)}' failed: {_stderr(error)}") from None

    def relative(self, path: Path) -> str:
        """Return `path` relative to the repository root, in git's spelling."""
        try:
            relative = path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            raise GitWriteError(f"'{path}' is outside the repository at {self.root}") from None
        return "." if relative == "" else relative

    def current_branch(self) -> str:
        """Return the checked-out branch, which the new branch starts from."""
        if not self.repo.head.is_valid():
            raise GitWriteError(
                "the repository has no commits yet; commit the spec directory first"
            )
        if self.repo.head.is_detached:
            raise GitWriteError(
                "HEAD is detached; check out the branch to start from (for example "
                "'git switch main'), then rerun"
            )
        return str(self.repo.active_branch.name)

    def check_unchanged(self, paths: Sequence[str]) -> None:
        """Raise `GitWriteError` if any of `paths` has staged or unstaged changes."""
        status = self._git("status", "--porcelain=v1", "--untracked-files=no", "--", *paths)
        changed = [line[3:] for line in status.splitlines() if line.strip()]
        if changed:
            raise GitWriteError(
                f"{', '.join(changed[:5])} {'has' if len(changed) == 1 else 'have'} uncommitted "
                "changes, which the commit would mix with this one; commit or stash them "
                "first ('git stash'), or leave out --commit"
            )

    def check_nothing_staged(self) -> None:
        staged = self._git("diff", "--cached", "--name-only")
        if staged.strip():
            raise GitWriteError(
                f"files are staged for commit ({', '.join(staged.split()[:5])}); commit or "
                "unstage them first ('git restore --staged PATH')"
            )

    def create_branch(self, name: str) -> None:
        """Create branch `name` at HEAD and switch to it."""
        try:
            self.repo.git.check_ref_format("--branch", name)
        except git.GitCommandError:
            raise GitWriteError(f"'{name}' is not a valid branch name; pass another --branch") \
                from None
        if name in self.repo.heads:
            raise GitWriteError(
                f"branch '{name}' already exists; pass --branch with another name, or delete "
                f"it with 'git branch -D {name}'"
            )
        self._git("switch", "--quiet", "--create", name)
        logger.info("Created and switched to branch %s", name)

    def leave_branch(self, branch: str, *, back_to: str) -> None:
        """Switch back to `back_to` and delete `branch`, which must have no new commits."""
        self._git("switch", "--quiet", back_to)
        self._git("branch", "--delete", branch)

    def commit_paths(self, paths: Sequence[str], message: str) -> CommitRef:
        """Commit exactly `paths` (new files included), leaving other staged changes alone."""
        self._git("add", "--", *paths)
        self._git("commit", "--quiet", "--message", message, "--only", "--", *paths)
        return self.resolve("HEAD")

    def commit_staged(self, message: str) -> CommitRef:
        self._git("commit", "--quiet", "--message", message)
        return self.resolve("HEAD")

    def resolve(self, revision: str) -> CommitRef:
        try:
            commit = self.repo.commit(revision)
        except (git.BadName, ValueError, git.GitCommandError):
            raise GitWriteError(
                f"revision '{revision}' not found; pass a commit sha, tag or branch that "
                "'git log' shows"
            ) from None
        message = str(commit.message).strip()
        subject = message.splitlines()[0] if message else ""
        return CommitRef(commit.hexsha, subject, len(commit.parents))

    def last_change(self, relative_dir: str) -> CommitRef:
        """Return the last commit on the current branch's first-parent line that changed a path.

        On the first-parent line a merged pull request is its merge commit, so
        the whole pull request is what gets reverted.
        """
        sha = self._git("log", "-1", "--first-parent", "--format=%H", "HEAD", "--",
                        relative_dir).strip()
        if not sha:
            raise GitWriteError(f"no commit on this branch changes '{relative_dir}'")
        return self.resolve(sha)

    def has_path(self, revision: str, relative_path: str) -> bool:
        try:
            self.repo.git.cat_file("-e", f"{revision}:{relative_path}")
            return True
        except git.GitCommandError:
            return False

    def revert_without_commit(self, target: CommitRef) -> None:
        """Stage the revert of `target`; a merge is reverted against its first parent."""
        mainline = ["--mainline", "1"] if target.parent_count > 1 else []
        try:
            self.repo.git.execute(["git", "revert", "--no-commit", *mainline, target.sha])
        except git.GitCommandError as error:
            self._git("revert", "--abort")
            raise GitWriteError(
                f"reverting {target.short} ({target.subject}) conflicts with later commits: "
                f"{_stderr(error)}; run 'q2q rollback --to REV' to restore the spec directory "
                "as of an earlier revision instead"
            ) from None

    def abort_revert(self) -> None:
        self._git("revert", "--abort")

    def restore_directory(self, revision: str, relative_dir: str) -> None:
        """Make the index and working tree of `relative_dir` match `revision`, deletions too."""
        self._git("restore", f"--source={revision}", "--staged", "--worktree", "--",
                  relative_dir)

    def has_staged_changes(self) -> bool:
        return bool(self._git("diff", "--cached", "--name-only").strip())


def _stderr(error: git.GitCommandError) -> str:
    text = str(error.stderr or error).strip()
    text = text.removeprefix("stderr:").strip().strip("'").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines[-3:]) if lines else str(error)
