"""Commit a change set on a new branch without touching the working tree, then push it.

Input: a `GitSource`, the revision to build on, a `ChangeSet` from
`reconciler.authoring.changeset` and the branch name. Output: a `BranchResult`
naming the branch and commit and saying whether it was pushed. The commit is
written with git plumbing and a temporary index, so neither the working tree
nor the checked-out branch changes, and an existing branch is never moved.
The drift rollback action and the HTTP write-back of activations call it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import git

from policies.spec_rules import check_specs
from reconciler.authoring.changeset import ChangeSet
from reconciler.authoring.edits import SpecText
from reconciler.git_source import GitSource
from registry_state.errors import GitWriteError, Severity, SpecEditError
from registry_state.loading import LoadedSpec, SourceFile, load_spec_file
from registry_state.spec import spec_model_for

logger = logging.getLogger(__name__)

AUTHOR_NAME = "q2q-registry"
AUTHOR_EMAIL = "q2q-registry@localhost"


@dataclass(frozen=True)
class BranchResult:
    branch: str
    commit: str
    created: bool
    pushed: bool
    detail: str
    edits: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"branch": self.branch, "commit": self.commit, "created": self.created,
                "pushed": self.pushed, "detail": self.detail, "edits": list(self.edits)}


@dataclass(frozen=True)
class PushTarget:
    """The remote a new branch is pushed to; `push` False keeps it local."""

    push: bool = True
    remote: str = "origin"


def existing_branch(source: GitSource, branch: str) -> BranchResult | None:
    """Return `branch` as an unchanged result if it exists, else None."""
    tip = _branch_tip(source.repository, branch)
    if tip is None:
        return None
    logger.info("Branch %s already exists at %s; left unchanged", branch, tip[:12])
    return BranchResult(branch, tip, created=False, pushed=False,
                        detail="the branch already exists; it was left unchanged")


def commit_on_new_branch(
    source: GitSource,
    *,
    revision: str,
    branch: str,
    changes: ChangeSet,
    specs: Sequence[LoadedSpec],
    taxonomy: Any,
    now: dt.datetime,
    reason: str,
    target: PushTarget,
) -> BranchResult:
    """Create (and push) `branch` with one commit applying `changes` on `revision`.

    An existing branch is left as it is and reported with `created=False`. The
    edited files are validated together with the other specs first, so the
    branch never contains an invalid commit.
    """
    existing = existing_branch(source, branch)
    if existing is not None:
        return existing
    if not changes.edits:
        reason = "; ".join(changes.notes) or "the change set has no edits"
        raise SpecEditError(f"nothing to commit on {branch}: {reason}")

    repo = source.repository
    contents = _edited_contents(source, revision, changes)
    _check(list(specs), contents, taxonomy, now=now)

    body = "\n".join([reason, "", *(edit.describe() for edit in changes.edits), "",
                      *changes.notes])
    commit = _commit(repo, revision, contents, message=f"{changes.subject}\n\n{body}\n")
    try:
        repo.git.update_ref(f"refs/heads/{branch}", commit, "0" * 40)
    except git.GitCommandError as error:
        raise GitWriteError(f"cannot create branch {branch}: {_stderr(error)}") from None
    logger.warning("Opened branch %s at %s: %s", branch, commit[:12], changes.subject)

    pushed, detail = _push(repo, branch, target)
    return BranchResult(branch, commit, created=True, pushed=pushed, detail=detail,
                        edits=tuple(edit.describe() for edit in changes.edits))


def _edited_contents(source: GitSource, revision: str, changes: ChangeSet) -> dict[str, bytes]:
    texts: dict[str, SpecText] = {}
    for edit in changes.edits:
        if edit.path not in texts:
            content = source.read_file(revision, edit.path)
            if content is None:
                raise SpecEditError(f"{edit.path} not found at revision {revision[:12]}")
            texts[edit.path] = SpecText(edit.path, content)
        text = texts[edit.path]
        entry = text.find(edit.spec_id)
        if entry is None:
            raise SpecEditError(f"{edit.path}: no spec '{edit.spec_id}' to edit")
        texts[edit.path] = text.with_value(entry, edit.field, edit.after)
    return {path: text.content for path, text in texts.items()}


def _check(specs: list[LoadedSpec], contents: Mapping[str, bytes], taxonomy: Any, *,
           now: dt.datetime) -> None:
    """Reject the edit if the edited files would not validate together with the rest."""
    spec_model = spec_model_for(taxonomy)
    combined = [loaded for loaded in specs if loaded.path not in contents]
    problems = []
    for path, content in contents.items():
        result = load_spec_file(SourceFile(path, content), spec_model)
        combined += result.specs
        problems += result.problems
    problems += check_specs(combined, now=now)
    errors = [problem for problem in problems if problem.severity is Severity.ERROR]
    if errors:
        raise SpecEditError("the edit would leave the specs invalid: "
                            + "; ".join(str(problem) for problem in errors))


def _branch_tip(repo: git.Repo, branch: str) -> str | None:
    try:
        return str(repo.git.rev_parse("--verify", "--quiet", f"refs/heads/{branch}"))
    except git.GitCommandError:
        return None


def _commit(repo: git.Repo, parent: str, contents: Mapping[str, bytes], *, message: str) -> str:
    """Write a commit whose tree is `parent`'s with `contents` replaced."""
    with tempfile.TemporaryDirectory(prefix="q2q-branch-") as directory:
        environment = {
            "GIT_INDEX_FILE": os.path.join(directory, "index"),
            "GIT_AUTHOR_NAME": AUTHOR_NAME, "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
            "GIT_COMMITTER_NAME": AUTHOR_NAME, "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
        }
        try:
            with repo.git.custom_environment(**environment):
                repo.git.read_tree(parent)
                for path, content in sorted(contents.items()):
                    blob = _write_blob(repo, os.path.join(directory, "blob"), content)
                    repo.git.update_index("--cacheinfo", f"100644,{blob},{path}")
                tree = repo.git.write_tree()
                message_file = os.path.join(directory, "message")
                with open(message_file, "w", encoding="utf-8") as handle:
                    handle.write(message)
                return str(repo.git.commit_tree(tree, "-p", parent, "-F", message_file))
        except git.GitCommandError as error:
            raise GitWriteError(f"cannot write the commit: {_stderr(error)}") from None


def _write_blob(repo: git.Repo, scratch: str, content: bytes) -> str:
    with open(scratch, "wb") as handle:
        handle.write(content)
    return str(repo.git.hash_object("-w", scratch))


def _push(repo: git.Repo, branch: str, options: PushTarget) -> tuple[bool, str]:
    if not options.push:
        return False, "not pushed: pushing is turned off"
    names = [remote.name for remote in repo.remotes]
    if options.remote not in names:
        return False, f"not pushed: the repository has no remote '{options.remote}'"
    # A mirror clone rejects refspecs on its mirror remote, so push to the URL itself.
    url = repo.remotes[options.remote].url
    try:
        repo.git.push(url, f"refs/heads/{branch}:refs/heads/{branch}")
    except git.GitCommandError as error:
        logger.warning("Branch %s not pushed to %s: %s", branch, options.remote,
                       _stderr(error))
        return False, f"not pushed to {options.remote}: {_stderr(error)}"
    logger.info("Pushed branch %s to %s", branch, options.remote)
    return True, f"pushed to {options.remote}"


def _stderr(error: git.GitCommandError) -> str:
    text = str(error.stderr or error).strip().removeprefix("stderr:").strip().strip("'")
    return text.splitlines()[-1].strip() if text else str(error)
