"""Roll the specs back on a new branch: revert their last change, or restore an old revision.

Input: the spec directory in a git working tree, and optionally a revision.
Without a revision, the last commit on the branch's first-parent line that
changed the directory is reverted, which reverts a merged pull request as a
whole. With one, the directory is restored to its content at that revision,
and files added since are deleted. Either way the result is one new commit on a new branch, checked
before committing: if the specs would be invalid, the branch is removed and
nothing changes. `q2q rollback` calls `rollback`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.authoring.gitops import CommitRef, GitWorkspace
from reconciler.authoring.summary import Cutover, change_lines, compare_specs
from reconciler.authoring.workspace import SpecDirectory
from registry_state.errors import GitWriteError, Problem, SpecEditError


@dataclass(frozen=True)
class RollbackResult:
    """The branch and commit a rollback made (commit None: nothing to roll back)."""

    branch: str
    commit: CommitRef | None
    changes: list[str] = field(default_factory=list)
    cutovers: list[Cutover] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    message: str = ""


def rollback(
    directory: Path,
    *,
    now: dt.datetime,
    to: str | None = None,
    branch: str | None = None,
) -> RollbackResult:
    """Commit the rollback of `directory` on a new branch, switched to, and return it."""
    if not directory.is_dir():
        raise SpecEditError(f"spec directory '{directory}' not found; pass it with --path")
    workspace = GitWorkspace(directory)
    try:
        return _rollback(workspace, directory, now=now, to=to, branch=branch)
    finally:
        workspace.close()


def _rollback(
    workspace: GitWorkspace,
    directory: Path,
    *,
    now: dt.datetime,
    to: str | None,
    branch: str | None,
) -> RollbackResult:
    relative = workspace.relative(directory)
    start = workspace.current_branch()
    workspace.check_nothing_staged()
    workspace.check_unchanged([relative])
    before = SpecDirectory(directory).state(now=now)

    undo: Callable[[], None]
    if to is None:
        target = workspace.last_change(relative)
        name = branch or f"q2q/rollback-{target.sha[:8]}"
        workspace.create_branch(name)
        try:
            workspace.revert_without_commit(target)
        except GitWriteError:
            workspace.leave_branch(name, back_to=start)
            raise
        undo = workspace.abort_revert
        subject = f'Revert "{target.subject}"'
        reason = f"This reverts commit {target.sha}, the last change to {relative}/."
    else:
        revision = workspace.resolve(to)
        if not workspace.has_path(revision.sha, relative):
            raise GitWriteError(
                f"'{relative}' does not exist at {revision.short}; pass a revision that has "
                "the spec directory"
            )
        name = branch or f"q2q/restore-{revision.sha[:8]}"
        workspace.create_branch(name)
        workspace.restore_directory(revision.sha, relative)

        def undo() -> None:
            workspace.restore_directory("HEAD", relative)

        subject = f"Restore {relative}/ as of {revision.short}"
        reason = (f"This restores {relative}/ to its content at {revision.sha} "
                  f'("{revision.subject}").')

    if not workspace.has_staged_changes():
        undo()
        workspace.leave_branch(name, back_to=start)
        return RollbackResult(name, None, message=f"{relative}/ already matches the rollback "
                              "target; nothing to commit")

    if not directory.is_dir():
        undo()
        workspace.leave_branch(name, back_to=start)
        raise SpecEditError(
            f"the rollback would delete {relative}/ and so retire every model; nothing was "
            f"committed and branch '{name}' was removed. Roll back to a revision that has "
            "specs with 'q2q rollback --to REV'"
        )
    after = SpecDirectory(directory).state(now=now)
    if after.errors:
        undo()
        workspace.leave_branch(name, back_to=start)
        listed = "\n".join(f"  {problem}" for problem in after.errors[:20])
        raise SpecEditError(
            f"the rollback would leave the specs invalid, so nothing was committed and branch "
            f"'{name}' was removed:\n{listed}\nRoll back to another revision with "
            "'q2q rollback --to REV'"
        )

    plan, cutovers = compare_specs(before.specs, after.specs, now=now)
    changes = change_lines(plan)
    body = [reason, ""]
    if changes or cutovers:
        body += ["Changes to the models:", *(f"  {line}" for line in changes)]
        body += [f"  {cutover.describe()}" for cutover in cutovers]
    else:
        body.append("The models do not change; only the files do.")
    try:
        commit = workspace.commit_staged("\n".join([subject, "", *body]) + "\n")
    except GitWriteError as error:
        raise GitWriteError(
            f"{error}. The rollback is staged on branch '{name}' (started from '{start}') but "
            "not committed; fix the problem, then run 'git commit'"
        ) from None
    return RollbackResult(name, commit, changes, cutovers, after.warnings, message=subject)
