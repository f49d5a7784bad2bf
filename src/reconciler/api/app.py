"""The FastAPI application: construction, the one error edge, health and metrics.

`create_app(daemon, settings)` returns an app whose routes read the database
through the daemon's engine and ask the daemon for passes. Every error leaves
through the handlers here in the guide's shape, `{"success": false, "error",
"message"}`: unknown ids give 404, bad parameters 422, an unreachable database
503, and a bug 500 with the traceback in the log only.
"""

from __future__ import annotations

import hmac
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from reconciler.daemon import Daemon
from reconciler.write_back import WriteBackSettings
from registry_state.errors import ModelNotFoundError, Q2QError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiSettings:
    """Secrets and limits of the API, read from the environment only."""

    api_token: str | None = None
    webhook_secret: str | None = None
    sync_timeout_s: float = 60.0
    write_back: WriteBackSettings = field(default_factory=WriteBackSettings)

    @classmethod
    def from_environment(cls) -> ApiSettings:
        return cls(
            api_token=os.environ.get("Q2Q_API_TOKEN") or None,
            webhook_secret=os.environ.get("Q2Q_WEBHOOK_SECRET") or None,
            write_back=WriteBackSettings.from_environment(),
        )


class ApiError(Exception):
    """An error with an HTTP status, rendered in the guide's error shape."""

    def __init__(self, status: int, error: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.extra = extra


def error_body(error: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"success": False, "error": error, "message": message, **extra}


def require_token(request: Request) -> None:
    """Check the bearer token of a mutating request, in constant time."""
    settings: ApiSettings = request.app.state.settings
    if settings.api_token is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), settings.api_token.encode()
    ):
        raise ApiError(401, "Unauthorized",
                       "this endpoint needs 'Authorization: Bearer <Q2Q_API_TOKEN>'")


def create_app(daemon: Daemon, settings: ApiSettings | None = None) -> FastAPI:
    from reconciler.api import drift_routes, eval_routes, registry_routes, webhooks

    app = FastAPI(
        title="q2q-registry",
        summary="GitOps registry for Q2Q classifier models",
        version="0.1.0",
    )
    app.state.daemon = daemon
    app.state.settings = settings or ApiSettings.from_environment()
    if app.state.settings.api_token is None:
        logger.warning("Q2Q_API_TOKEN is not set: mutating endpoints accept any caller")

    @app.exception_handler(ApiError)
    def api_error(_request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(error_body(error.error, error.message, **error.extra),
                            status_code=error.status)

    @app.exception_handler(ModelNotFoundError)
    def not_found(_request: Request, error: ModelNotFoundError) -> JSONResponse:
        return JSONResponse(error_body("Model not found", str(error)), status_code=404)

    @app.exception_handler(RequestValidationError)
    def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in e["loc"][1:]), "message": e["msg"]}
            for e in error.errors()
        ]
        message = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        return JSONResponse(error_body("Invalid request", message, details=details),
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(error.detail), str(error.detail)),
                            status_code=error.status_code)

    @app.exception_handler(sa.exc.OperationalError)
    def database_down(request: Request, error: sa.exc.OperationalError) -> JSONResponse:
        logger.warning("Database unavailable during %s %s: %s", request.method,
                       request.url.path, str(error.orig or error).splitlines()[0])
        return JSONResponse(error_body("Service unavailable", "the database is unreachable"),
                            status_code=503)

    @app.exception_handler(Q2QError)
    def expected_error(_request: Request, error: Q2QError) -> JSONResponse:
        return JSONResponse(error_body(type(error).__name__, str(error)), status_code=400)

    @app.exception_handler(Exception)
    def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.error("Unexpected error in %s %s", request.method, request.url.path,
                     exc_info=error)
        return JSONResponse(error_body("Internal error", "see the server log"),
                            status_code=500)

    @app.get("/healthz", response_class=PlainTextResponse, tags=["health"])
    def healthz() -> str:
        """Liveness: the process serves requests."""
        return "ok"

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """Readiness: the database responds to a query. 503 while it does not."""
        if daemon.database_reachable():
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False, "reason": "the database is unreachable"},
                            status_code=503)

    @app.get("/metrics", tags=["health"])
    def metrics() -> Response:
        return Response(daemon.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(registry_routes.router)
    app.include_router(webhooks.router)
    app.include_router(drift_routes.router)
    app.include_router(eval_routes.router)
    return app
