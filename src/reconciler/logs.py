"""Logging setup for the daemon and the CLI: text on a terminal, JSON on request.

`Q2Q_LOG_FORMAT=json` switches to one JSON object per line with the pass id and
revision as fields when a pass logged them. Secrets never reach a log record:
they are read from the environment where they are used and are not passed to
loggers.
"""

from __future__ import annotations

import logging
import os
import sys

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int, *, log_format: str | None = None) -> None:
    """Send logs to stderr as text, or as JSON when the format (or Q2Q_LOG_FORMAT) is json."""
    log_format = (log_format or os.environ.get("Q2Q_LOG_FORMAT") or "text").lower()
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        ))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("git", "apscheduler", "uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
