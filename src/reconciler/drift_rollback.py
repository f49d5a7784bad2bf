"""Open a rollback branch for a drifting model: a commit in git, never a database write.

Input: the models repository, the revision the alert was checked at, the
drifting model's id and the instant. Output: a branch `q2q/rollback/<model-id>`
whose one new commit, on top of that revision, sets `active: false` on the
drifting model and puts the provider's previous model back in effect. Merging
the branch and letting the reconciler apply it performs the rollback, so git
stays the source of truth. The branch is pushed to the repository's remote
when one is configured and the credentials allow it.

The edits come from `reconciler.authoring` (the activate and deactivate
change sets); `authoring.branch_commit` writes the commit without touching
the working tree or the checked-out branch.
"""

from __future__ import annotations

import datetime as dt
import logging

from policies.drift_policy import RollbackOptions
from reconciler.authoring.branch_commit import (
    BranchResult,
    PushTarget,
    commit_on_new_branch,
    existing_branch,
)
from reconciler.authoring.changeset import ChangeSet, FieldEdit, activate, deactivate
from reconciler.desired import BlobCache, load_desired
from reconciler.git_source import GitSource
from registry_state.errors import SpecEditError
from registry_state.loading import LoadedSpec

logger = logging.getLogger(__name__)

BRANCH_PREFIX = "q2q/rollback/"

RollbackResult = BranchResult


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
    branch = f"{BRANCH_PREFIX}{model_id}"
    existing = existing_branch(source, branch)
    if existing is not None:
        return existing

    # Compute the edits from the specs of the checked revision.
    desired = load_desired(source, source.resolve(revision), spec_dir=spec_dir,
                           cache=BlobCache())
    changes = rollback_changes(desired.specs, model_id, spec_dir=spec_dir, now=now)
    return commit_on_new_branch(
        source, revision=revision, branch=branch, changes=changes, specs=desired.specs,
        taxonomy=desired.settings.label_taxonomy(), now=now, reason=reason,
        target=PushTarget(options.push, options.remote),
    )
