"""The HTTP API: the governance guide's registry paths, status, webhooks, health and metrics."""

from reconciler.api.app import ApiSettings, create_app

__all__ = ["ApiSettings", "create_app"]
