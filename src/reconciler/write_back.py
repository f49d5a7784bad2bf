"""HTTP write-back: turn an activate or deactivate request into a branch commit.

Off by default (`Q2Q_WRITE_BACK=1` turns it on). With it, the governance
guide's `POST /q2q/registry/models/{id}/activate` and `/deactivate` create the
same change `q2q activate` or `q2q deactivate` would make, as one commit on a
branch `q2q/<action>/<model-id>` on top of the reconciled branch's tip, and
push it where the credentials allow. The database is not touched: the change
takes effect when a reviewer merges the branch and the reconciler applies it.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Literal

from reconciler.authoring.branch_commit import (
    BranchResult,
    PushTarget,
    commit_on_new_branch,
    existing_branch,
)
from reconciler.authoring.changeset import activate, deactivate
from reconciler.desired import BlobCache, load_desired
from reconciler.git_source import GitSource

Action = Literal["activate", "deactivate"]


@dataclass(frozen=True)
class WriteBackSettings:
    """Whether the API writes activation changes to git, and where it pushes them."""

    enabled: bool = False
    remote: str = "origin"
    push: bool = True

    @classmethod
    def from_environment(cls) -> WriteBackSettings:
        return cls(
            enabled=os.environ.get("Q2Q_WRITE_BACK", "").lower() in {"1", "true", "yes"},
            remote=os.environ.get("Q2Q_WRITE_BACK_REMOTE") or "origin",
            push=os.environ.get("Q2Q_WRITE_BACK_PUSH", "1").lower() not in {"0", "false", "no"},
        )


def open_change_branch(
    source: GitSource,
    *,
    action: Action,
    model_id: str,
    spec_dir: str,
    now: dt.datetime,
    settings: WriteBackSettings,
) -> BranchResult:
    """Commit the activation change for `model_id` on `q2q/<action>/<model_id>`.

    It builds on the tip the reconciler fetched last and does not fetch itself,
    so it never races the daemon's fetch.
    """
    branch = f"q2q/{action}/{model_id}"
    existing = existing_branch(source, branch)
    if existing is not None:
        return existing

    commit = source.resolve()
    desired = load_desired(source, commit, spec_dir=spec_dir, cache=BlobCache())
    if action == "activate":
        changes = activate(desired.specs, model_id, now=now, directory=spec_dir)
    else:
        changes = deactivate(desired.specs, model_id, now=now, directory=spec_dir)
    return commit_on_new_branch(
        source,
        revision=commit.revision,
        branch=branch,
        changes=changes,
        specs=desired.specs,
        taxonomy=desired.settings.label_taxonomy(),
        now=now,
        reason=f"Requested through POST /q2q/registry/models/{model_id}/{action}.",
        target=PushTarget(push=settings.push, remote=settings.remote),
    )
