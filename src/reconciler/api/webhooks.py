"""The GitHub-style push webhook: verify the signature, then queue a pass.

GitHub signs the raw body with HMAC-SHA256 using the webhook's secret and sends
`X-Hub-Signature-256: sha256=<hex>`. A request with a missing or wrong
signature gets 401 and changes nothing. A push to another branch is accepted
and ignored. The pass runs on the daemon's thread, so the response (202) does
not wait for it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from reconciler.api.app import ApiError, ApiSettings
from reconciler.daemon import Daemon

logger = logging.getLogger(__name__)

router = APIRouter(tags=["webhooks"])

MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB


def signature_is_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Check `sha256=<hex>` against the HMAC-SHA256 of the body, in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip())


@router.post("/webhooks/github", status_code=202)
async def github_push(request: Request) -> JSONResponse:
    """Queue a reconcile pass for a verified push to the reconciled branch."""
    settings: ApiSettings = request.app.state.settings
    daemon: Daemon = request.app.state.daemon
    if settings.webhook_secret is None:
        raise ApiError(503, "Webhook not configured",
                       "set Q2Q_WEBHOOK_SECRET on the reconciler to accept push webhooks")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, "Payload too large", f"the body exceeds {MAX_BODY_BYTES} bytes")
    if not signature_is_valid(settings.webhook_secret, body,
                              request.headers.get("x-hub-signature-256")):
        logger.warning("Rejected a webhook with a missing or invalid signature from %s",
                       request.client.host if request.client else "unknown")
        raise ApiError(401, "Invalid signature",
                       "X-Hub-Signature-256 does not match the body signed with the secret")

    event = request.headers.get("x-github-event", "push")
    if event == "ping":
        return JSONResponse({"success": True, "message": "pong"}, status_code=200)
    if event != "push":
        return _ignored(f"event '{event}' is not a push")
    try:
        payload: dict[str, Any] = json.loads(body)
    except ValueError:
        raise ApiError(422, "Invalid request", "the body is not JSON") from None
    branch = daemon.reconciler.source.branch
    ref = payload.get("ref") if isinstance(payload, dict) else None
    if ref != f"refs/heads/{branch}":
        return _ignored(f"push to {ref!r}, not to the reconciled branch {branch!r}")

    daemon.request_pass("webhook")
    after = str(payload.get("after") or "")[:12]
    logger.info("Push webhook for %s at %s: pass queued", branch, after or "?")
    return JSONResponse({"success": True, "message": "reconcile pass queued"}, status_code=202)


def _ignored(reason: str) -> JSONResponse:
    return JSONResponse({"success": True, "message": f"ignored: {reason}"}, status_code=202)
