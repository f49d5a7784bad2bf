"""Routes under /q2q/registry: the governance guide's paths and JSON shapes.

Reads go straight to the database. Activation is declared in git, so the
guide's activate and deactivate endpoints return 409 with the `q2q` command
that makes the change as a commit.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from reconciler.api.app import ApiError, require_token
from reconciler.daemon import Daemon
from reconciler.write_back import Action, WriteBackSettings, open_change_branch
from registry_state import queries, store
from registry_state.errors import GitWriteError, SpecEditError

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/q2q/registry", tags=["registry"])

ModelId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9.-]*$")]


def _daemon(request: Request) -> Daemon:
    daemon: Daemon = request.app.state.daemon
    return daemon


@router.get("/models")
def list_models(
    request: Request,
    include_retired: Annotated[bool, Query(alias="includeRetired")] = True,
) -> dict[str, Any]:
    """List all models, retired ones included unless includeRetired=false."""
    with _daemon(request).reader.connect() as connection:
        rows = queries.list_models(connection, include_retired=include_retired)
    return {"success": True, "count": len(rows), "models": rows}


@router.get("/models/active/{provider}")
def active_model(
    request: Request, provider: Literal["claude", "openai", "gemini"]
) -> dict[str, Any]:
    """Return the model in effect now for a provider."""
    with _daemon(request).reader.connect() as connection:
        row = queries.active_model(connection, provider)
    return {"success": True, "model": row}


@router.get("/models/{model_id}")
def get_model(request: Request, model_id: ModelId) -> dict[str, Any]:
    with _daemon(request).reader.connect() as connection:
        row = queries.get_model(connection, model_id)
    return {"success": True, "model": row}


def _declared_in_git(model_id: str, action: str) -> ApiError:
    return ApiError(
        409,
        "Activation is declared in git",
        f"models are {action}d by a commit to the models repository, not through the API; "
        f"run: q2q {action} {model_id} --commit, then open a pull request from the "
        "branch it creates",
    )


_ACTIVATION_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "write-back is on: the change was committed on a branch"},
    409: {"description": "activation is declared in git (write-back is off), or the "
          "change cannot be made"},
}


@router.post("/models/{model_id}/activate", dependencies=[Depends(require_token)],
             status_code=202, responses=_ACTIVATION_RESPONSES)
def activate(request: Request, model_id: ModelId) -> dict[str, Any]:
    """Open a branch that activates the model (write-back on), or return 409."""
    return _change_activation(request, model_id, "activate")


@router.post("/models/{model_id}/deactivate", dependencies=[Depends(require_token)],
             status_code=202, responses=_ACTIVATION_RESPONSES)
def deactivate(request: Request, model_id: ModelId) -> dict[str, Any]:
    """Open a branch that deactivates the model (write-back on), or return 409."""
    return _change_activation(request, model_id, "deactivate")


def _change_activation(request: Request, model_id: str, action: Action) -> dict[str, Any]:
    daemon = _daemon(request)
    with daemon.reader.connect() as connection:
        model = queries.get_model(connection, model_id)
    settings: WriteBackSettings = request.app.state.settings.write_back
    if not settings.enabled:
        raise _declared_in_git(model_id, action)

    reconciler = daemon.reconciler
    source = reconciler.source.fork()
    try:
        result = open_change_branch(
            source, action=action, model_id=model_id, spec_dir=reconciler.options.spec_dir,
            now=reconciler.clock(), settings=settings,
        )
    except (SpecEditError, GitWriteError) as error:
        logger.warning("Write-back of %s %s failed: %s", action, model_id, error)
        raise ApiError(409, f"Cannot {action} the model", str(error)) from None
    finally:
        source.close()
    verb = "Opened" if result.created else "Found the existing"
    return {
        "success": True,
        "message": f"{verb} branch {result.branch} that {action}s {model_id}; merge it to "
        f"apply the change ({result.detail})",
        "branch": result.branch,
        "commit": result.commit,
        "pushed": result.pushed,
        "created": result.created,
        "edits": list(result.edits),
        "model": model,
    }


@router.post("/sync", dependencies=[Depends(require_token)])
def sync(request: Request) -> dict[str, Any]:
    """Reconcile the branch tip now and return what the pass did."""
    daemon = _daemon(request)
    ticket = daemon.request_pass("sync")
    if not ticket.wait(request.app.state.settings.sync_timeout_s):
        raise ApiError(504, "Sync timed out",
                       "the pass is still running; check GET /q2q/registry/status")
    if ticket.skipped:
        raise ApiError(503, "Sync not run", ticket.skipped)
    result = ticket.result
    if ticket.error is not None or result is None:
        problems = [p.as_json() for p in result.problems] if result else []
        raise ApiError(
            409 if problems else 503,
            "Sync failed",
            f"{ticket.error}; nothing was applied",
            revision=result.revision if result else None,
            problems=problems,
        )
    return {
        "success": True,
        "message": f"Synced revision {result.revision}: {len(result.plan)} changes",
        "status": result.status,
        "revision": result.revision,
        "changes": [change.as_json() for change in result.plan.changes],
        "counts": result.plan.counts(),
    }


@router.get("/status")
def status(request: Request) -> dict[str, Any]:
    """Revisions and the conditions Ready, Reconciling and Stalled, each with a reason."""
    daemon = _daemon(request)
    with daemon.reader.connect() as connection:
        sync_status = store.read_status(connection)
        last_run = queries.get_run(connection, sync_status.last_run_id)
    state = daemon.state
    in_sync = sync_status.last_applied_revision is not None and \
        sync_status.last_applied_revision == sync_status.last_attempted_revision
    stalled = state.stalled_revision is not None or (
        sync_status.last_status in {"failed", "refused"} and not in_sync
    )
    ready_reason = "ReconciliationSucceeded" if in_sync else \
        (state.last_error_reason or sync_status.last_status or "NeverApplied")
    conditions = [
        _condition("Ready", in_sync and state.last_error is None, ready_reason,
                   state.last_error or sync_status.last_error or ""),
        _condition("Reconciling", state.reconciling, "Progressing" if state.reconciling
                   else "Idle", ""),
        _condition("Stalled", stalled, state.stalled_reason or (
            "ReconciliationFailed" if stalled else "NotStalled"),
            sync_status.last_error or "" if stalled else ""),
    ]
    return {
        "success": True,
        "source": sync_status.source,
        "lastAppliedRevision": sync_status.last_applied_revision,
        "lastAppliedAt": _iso(sync_status.last_applied_at),
        "lastAttemptedRevision": sync_status.last_attempted_revision,
        "lastAttemptedAt": _iso(sync_status.last_attempted_at),
        "nextCutoverAt": _iso(sync_status.next_cutover_at),
        "leader": state.is_leader,
        "conditions": conditions,
        "lastRun": last_run,
    }


def _condition(kind: str, value: bool, reason: str, message: str) -> dict[str, Any]:
    return {"type": kind, "status": "True" if value else "False", "reason": reason,
            "message": message}


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


@router.get("/audit")
def audit(
    request: Request,
    model_id: Annotated[str | None, Query(alias="modelId", max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Audit records, newest first."""
    with _daemon(request).reader.connect() as connection:
        records = queries.list_audit(connection, model_id=model_id, limit=limit)
    return {"success": True, "count": len(records), "records": records}
