"""`q2q run` (the reconciler daemon with its HTTP API) and `q2q serve` (the API alone).

Both serve the HTTP API on a thread of their own. `run` reconciles on an
interval, at scheduled cutovers, on SIGHUP and on webhooks; `serve` reconciles
only on a `POST /q2q/registry/sync` request or a webhook. SIGTERM and SIGINT let
the pass in flight commit or roll back, then stop the process.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

import click
import uvicorn

from reconciler.api import ApiSettings, create_app
from reconciler.cli.options import build_reconciler, db_option, source_options
from reconciler.daemon import Daemon, DaemonSettings
from reconciler.leadership import leader_lock_for
from reconciler.logs import configure_logging
from registry_state.errors import Q2QError

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 30.0


class ServerStartError(Q2QError):
    """The HTTP API did not start listening."""


def server_options(function: click.decorators.FC) -> click.decorators.FC:
    function = click.option(
        "--port", envvar="Q2Q_PORT", default=3005, show_default=True, type=click.IntRange(0, 65535),
        help="TCP port of the HTTP API [env: Q2Q_PORT].",
    )(function)
    function = click.option(
        "--host", envvar="Q2Q_HOST", default="127.0.0.1", show_default=True,
        help="Address the HTTP API listens on; 0.0.0.0 in a container [env: Q2Q_HOST].",
    )(function)
    return function


def _serve(daemon: Daemon, *, host: str, port: int) -> None:
    app = create_app(daemon, ApiSettings.from_environment())
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, name="http", daemon=True)
    thread.start()
    _wait_until_listening(server, thread, host=host, port=port)

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("Received %s: finishing the pass in flight, then stopping",
                    signal.Signals(signum).name)
        daemon.stop()

    def on_hangup(_signum: int, _frame: FrameType | None) -> None:
        logger.info("Received SIGHUP: queueing a pass")
        daemon.request_pass("sighup")

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hangup)
    try:
        daemon.run()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _wait_until_listening(
    server: uvicorn.Server, thread: threading.Thread, *, host: str, port: int
) -> None:
    """Return once the HTTP server listens; raise if it stopped, as when the port is taken."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            raise ServerStartError(
                f"the HTTP API could not listen on {host}:{port} (see the error above); "
                "pick a free port with --port or Q2Q_PORT"
            )
        if time.monotonic() > deadline:
            server.should_exit = True
            raise ServerStartError(
                f"the HTTP API did not start on {host}:{port} within {STARTUP_TIMEOUT_S:.0f}s"
            )
        time.sleep(0.05)
    logger.info("HTTP API listening on http://%s:%d", host, port)


def _daemon(
    *, repo: str, branch: str | None, spec_dir: str, database_url: str,
    settings: DaemonSettings,
) -> Daemon:
    reconciler = build_reconciler(
        repo=repo, branch=branch, spec_dir=spec_dir, database_url=database_url
    )
    reconciler.options.instance = reconciler.options.instance.removeprefix("cli@")
    return Daemon(reconciler, leader_lock=leader_lock_for(reconciler.engine), settings=settings)


@click.command()
@source_options
@db_option
@server_options
@click.option("--interval", envvar="Q2Q_INTERVAL", default=60.0, show_default=True,
              type=click.FloatRange(min=0.1), help="Seconds between passes [env: Q2Q_INTERVAL].")
@click.option("--lease", envvar="Q2Q_LEASE", default=5.0, show_default=True,
              type=click.FloatRange(min=0.1),
              help="Seconds between a follower's attempts to become leader [env: Q2Q_LEASE].")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Log format [default: text, or Q2Q_LOG_FORMAT].")
def run(repo: str, branch: str | None, spec_dir: str, database_url: str, host: str, port: int,
        interval: float, lease: float, log_format: str | None) -> None:
    """Run the reconciler: apply the branch tip on an interval, on webhooks and on SIGHUP.

    Several replicas may run against one database: one leads and runs the
    scheduled passes, the others serve the API and take over when it stops.
    Secrets come from the environment only: Q2Q_API_TOKEN guards the mutating
    endpoints, Q2Q_WEBHOOK_SECRET verifies push webhooks.
    """
    configure_logging(logging.INFO, log_format=log_format)
    daemon = _daemon(repo=repo, branch=branch, spec_dir=spec_dir, database_url=database_url,
                     settings=DaemonSettings(interval_s=interval, lease_s=lease))
    _serve(daemon, host=host, port=port)


@click.command()
@source_options
@db_option
@server_options
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Log format [default: text, or Q2Q_LOG_FORMAT].")
def serve(repo: str, branch: str | None, spec_dir: str, database_url: str, host: str,
          port: int, log_format: str | None) -> None:
    """Serve the HTTP API without scheduled passes; sync and webhooks still reconcile."""
    configure_logging(logging.INFO, log_format=log_format)
    daemon = _daemon(repo=repo, branch=branch, spec_dir=spec_dir, database_url=database_url,
                     settings=DaemonSettings(scheduled=False))
    _serve(daemon, host=host, port=port)
