"""Routes for drift monitoring: the guide's /q2q/drift paths and prediction ingestion.

`GET /q2q/drift/checks?limit=` and `GET /q2q/drift/alerts?limit=` return stored
checks newest first as `{"success", "count", "checks" | "alerts"}`, each check
with the guide's drift_checks columns in camelCase plus model, policy, window
and status. `POST /q2q/predictions` takes `{"predictions": [...]}`, validates
every row before storing any, and skips rows whose (requestId, label) is
already stored, so a client may retry a batch safely.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request

from reconciler.api.app import ApiError, require_token
from reconciler.daemon import Daemon
from registry_state import drift_store, prediction_store
from registry_state.predictions import InvalidPredictionError, parse_prediction

router = APIRouter(tags=["drift"])

MAX_BATCH = 10_000
"""Most predictions one request may carry; larger loads use `q2q predictions import`."""


def _daemon(request: Request) -> Daemon:
    daemon: Daemon = request.app.state.daemon
    return daemon


@router.get("/q2q/drift/checks")
def checks(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    policy_id: Annotated[str | None, Query(alias="policyId", max_length=100)] = None,
    model_id: Annotated[str | None, Query(alias="modelId", max_length=100)] = None,
) -> dict[str, Any]:
    """Drift checks, newest first."""
    with _daemon(request).reader.connect() as connection:
        rows = drift_store.list_checks(connection, limit=limit, policy_id=policy_id,
                                       model_id=model_id)
    return {"success": True, "count": len(rows), "checks": rows}


@router.get("/q2q/drift/alerts")
def alerts(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    policy_id: Annotated[str | None, Query(alias="policyId", max_length=100)] = None,
    model_id: Annotated[str | None, Query(alias="modelId", max_length=100)] = None,
) -> dict[str, Any]:
    """Drift checks that raised an alert, newest first."""
    with _daemon(request).reader.connect() as connection:
        rows = drift_store.list_checks(connection, limit=limit, alerts_only=True,
                                       policy_id=policy_id, model_id=model_id)
    return {"success": True, "count": len(rows), "alerts": rows}


@router.post("/q2q/predictions", dependencies=[Depends(require_token)])
def ingest(request: Request, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Store a batch of predictions; all or nothing."""
    items = body.get("predictions")
    if not isinstance(items, list) or not items:
        raise ApiError(422, "Invalid request",
                       "the body must be {\"predictions\": [...]} with at least one prediction")
    if len(items) > MAX_BATCH:
        raise ApiError(413, "Batch too large",
                       f"the batch has {len(items)} predictions, more than {MAX_BATCH}; split it "
                       "or use 'q2q predictions import FILE'")
    rows = []
    for index, item in enumerate(items):
        try:
            rows.append(parse_prediction(item))
        except InvalidPredictionError as error:
            where = f"predictions[{index}]" + (f".{error.field}" if error.field else "")
            raise ApiError(422, "Invalid prediction",
                           f"{where}: {error.detail}; nothing was stored",
                           index=index, field=error.field or None) from None
    with _daemon(request).engine.begin() as connection:
        result = prediction_store.write_predictions(connection, [rows])
    return {"success": True, "received": result.received, "inserted": result.inserted,
            "duplicates": result.duplicates}
