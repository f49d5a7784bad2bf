"""Open a rollback branch for a drifting model: a commit in git, never a database write.

Input: the models repository, the revision the alert was checked at, the
drifting model's id and the instant. Output: a branch `q2q/rollback/<model-id>`
whose one new commit, on top of that revision, sets `active: false` on the
drifting model and puts the provider's previous model back in effect. Merging
the branch and letting the reconciler apply it performs the rollback, so git
stays the source of truth. The branch is pushed to the repository's remote
when one is configured and the credentials allow it.

The edits come from `reconciler.authoring` (the activate and deactivate
change sets and the text-preserving `SpecText` edits). The commit is written
with git plumbing and a temporary index, so neither the working tree nor the
checked-out branch changes.
TODO: move the branch-and-commit helper into `reconciler.authoring` once that
package has git helpers of its own.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import git

from policies.drift_policy import RollbackOptions
from policies.spec_rules import check_specs
from reconciler.authoring.changeset import ChangeSet, FieldEdit, activate, deactivate
from reconciler.authoring.edits import SpecText
from reconciler.desired import BlobCache, load_desired
from reconciler.git_source import GitSource
from registry_state.errors import GitWriteError, Severity, SpecEditError
from registry_state.loading import LoadedSpec, SourceFile, load_spec_file
from registry_state.spec import spec_model_for

logger = logging.getLogger(__name__)

BRANCH_PREFIX = "q2q/rollback/"
AUTHOR_NAME = "q2q-registry"
AUTHOR_EMAIL = "q2q-registry@localhost"


@dataclass(frozen=True)
class RollbackResult:
    branch: str
    commit: str
    created: bool
    pushed: bool
    detail: str
    edits: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"branch": self.branch, "commit": self.commit, "created": self.created,
                "pushed": self.pushed, "detail": self.detail, "edits": list(self.edits)}


def previous_model(specs: list[LoadedSpec], drifting: LoadedSpec, *,
                   now: dt.datetime) -> LoadedSpec | None:
    """Return the provider's spec that took effect last before the drifting one."""
    spec = drifting.spec
    candidates = [
        loaded for loaded in specs
        if loaded.spec.provider == spec.provider and loaded.spec.id != spec.id
        and loaded.spec.effective_from <= min(spec.effective_from, now)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda loaded: (loaded.spec.effective_from, loaded.spec.id))


def rollback_changes(specs: list[LoadedSpec], model_id: str, *, spec_dir: str,
                     now: dt.datetime) -> ChangeSet:
    """Return the edits that take `model_id` out of effect and restore its predecessor."""
    drifting = next((loaded for loaded in specs if loaded.spec.id == model_id), None)
    if drifting is None:
        raise SpecEditError(f"model '{model_id}' has no spec under {spec_dir}; nothing to roll "
                            "back")
    previous = previous_model(specs, drifting, now=now)
    if previous is None:
        changes = deactivate(specs, model_id, now=now, directory=spec_dir)
    else:
        changes = activate(specs, previous.spec.id, now=now, directory=spec_dir)
    edits = list(changes.edits)
    if drifting.spec.active and not any(e.spec_id == model_id for e in edits):
        edits.append(FieldEdit(drifting.path, model_id, ("active",), True, False))
    if not edits:
        raise SpecEditError(f"model '{model_id}' is not active at this revision; nothing to "
                            "roll back")
    subject = f"Roll back {model_id}" + (f" to {previous.spec.id}" if previous else "")
    return ChangeSet(subject=subject, edits=tuple(edits), notes=changes.notes)


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


def open_rollback_branch(
    source: GitSource,
    *,
    revision: str,
    model_id: str,
    spec_dir: str,
    now: dt.datetime,
    options: RollbackOptions,
    reason: str,
) -> RollbackResult:
    """Create (and push) `q2q/rollback/<model_id>` unless it already exists."""
    repo = source.repository
    branch = f"{BRANCH_PREFIX}{model_id}"
    existing = _branch_tip(repo, branch)
    if existing is not None:
        logger.info("Rollback branch %s already exists at %s; left unchanged", branch,
                    existing[:12])
        return RollbackResult(branch, existing, created=False, pushed=False,
                              detail="the branch already exists; it was left unchanged")

    # Compute the edits from the specs of the checked revision.
    desired = load_desired(source, source.resolve(revision), spec_dir=spec_dir,
                           cache=BlobCache())
    changes = rollback_changes(desired.specs, model_id, spec_dir=spec_dir, now=now)
    contents = _edited_contents(source, revision, changes)
    _check(desired.specs, contents, desired.settings.label_taxonomy(), now=now)

    # Write the commit on top of the revision and point the new branch at it.
    body = "\n".join([reason, "", *(edit.describe() for edit in changes.edits), "",
                      *changes.notes])
    commit = _commit(repo, revision, contents, message=f"{changes.subject}\n\n{body}\n")
    try:
        repo.git.update_ref(f"refs/heads/{branch}", commit, "0" * 40)
    except git.GitCommandError as error:
        raise GitWriteError(f"cannot create branch {branch}: {_stderr(error)}") from None
    logger.warning("Opened rollback branch %s at %s: %s", branch, commit[:12], changes.subject)

    pushed, detail = _push(repo, branch, options)
    return RollbackResult(branch, commit, created=True, pushed=pushed, detail=detail,
                          edits=tuple(edit.describe() for edit in changes.edits))


def _check(specs: list[LoadedSpec], contents: Mapping[str, bytes], taxonomy: Any, *,
           now: dt.datetime) -> None:
    """Reject the edit if the edited files would not validate together with the rest."""
    spec_model = spec_model_for(taxonomy)
    kept = [loaded for loaded in specs if loaded.path not in contents]
    problems = []
    for path, content in contents.items():
        result = load_spec_file(SourceFile(path, content), spec_model)
        kept += result.specs
        problems += result.problems
    problems += check_specs(kept, now=now)
    errors = [problem for problem in problems if problem.severity is Severity.ERROR]
    if errors:
        raise SpecEditError("the rollback edit would leave the specs invalid: "
                            + "; ".join(str(problem) for problem in errors))


def _branch_tip(repo: git.Repo, branch: str) -> str | None:
    try:
        return str(repo.git.rev_parse("--verify", "--quiet", f"refs/heads/{branch}"))
    except git.GitCommandError:
        return None


def _commit(repo: git.Repo, parent: str, contents: Mapping[str, bytes], *, message: str) -> str:
    """Write a commit whose tree is `parent`'s with `contents` replaced."""
    with tempfile.TemporaryDirectory(prefix="q2q-rollback-") as directory:
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
            raise GitWriteError(f"cannot write the rollback commit: {_stderr(error)}") from None


def _write_blob(repo: git.Repo, scratch: str, content: bytes) -> str:
    with open(scratch, "wb") as handle:
        handle.write(content)
    return str(repo.git.hash_object("-w", scratch))


def _push(repo: git.Repo, branch: str, options: RollbackOptions) -> tuple[bool, str]:
    if not options.push:
        return False, "not pushed: the policy sets push: false"
    names = [remote.name for remote in repo.remotes]
    if options.remote not in names:
        return False, f"not pushed: the repository has no remote '{options.remote}'"
    # A mirror clone rejects refspecs on its mirror remote, so push to the URL itself.
    url = repo.remotes[options.remote].url
    try:
        repo.git.push(url, f"refs/heads/{branch}:refs/heads/{branch}")
    except git.GitCommandError as error:
        logger.warning("Rollback branch %s not pushed to %s: %s", branch, options.remote,
                       _stderr(error))
        return False, f"not pushed to {options.remote}: {_stderr(error)}"
    logger.info("Pushed rollback branch %s to %s", branch, options.remote)
    return True, f"pushed to {options.remote}"


def _stderr(error: git.GitCommandError) -> str:
    text = str(error.stderr or error).strip().removeprefix("stderr:").strip().strip("'")
    return text.splitlines()[-1].strip() if text else str(error)
