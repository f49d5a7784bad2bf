"""The `q2q` command line: one module per command, loaded when that command runs.

This module is the CLI's single error edge. An expected failure (`Q2QError`)
prints a one-line message and exits 1; anything else prints a short message,
writes the traceback to a log file and exits 1. Commands load lazily so that
`q2q validate` in a pre-commit hook does not pay for the database and git
imports.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import click

from registry_state.errors import Q2QError

COMMANDS = {
    "validate": ("reconciler.cli.validate", "validate", "Validate spec files on disk."),
    "plan": ("reconciler.cli.plan_apply", "plan", "Show what apply would change."),
    "apply": ("reconciler.cli.plan_apply", "apply", "Apply the branch tip to the database."),
    "status": ("reconciler.cli.inspect", "status", "Show revisions and sync status."),
    "models": ("reconciler.cli.inspect", "models", "List and show recorded models."),
    "audit": ("reconciler.cli.inspect", "audit", "Show audit records, newest first."),
    "db": ("reconciler.cli.db", "db", "Manage the database schema."),
    "new": ("reconciler.cli.authoring", "new", "Copy a spec under a new id."),
    "activate": ("reconciler.cli.authoring", "activate", "Activate a spec, now or at a time."),
    "deactivate": ("reconciler.cli.authoring", "deactivate", "Deactivate a spec."),
    "rollback": ("reconciler.cli.authoring", "rollback", "Roll the specs back on a branch."),
    "schema": ("reconciler.cli.schema", "schema", "Print JSON Schemas for spec files."),
    "run": ("reconciler.cli.run", "run", "Run the reconciler daemon with its HTTP API."),
    "serve": ("reconciler.cli.run", "serve", "Serve the HTTP API without scheduled passes."),
    "drift": ("reconciler.cli.drift", "drift", "Run drift checks; show checks, alerts, reports."),
    "predictions": ("reconciler.cli.predictions", "predictions", "Import classifier predictions."),
    "eval": ("reconciler.cli.eval", "eval_group", "Upload datasets, evaluate specs, show results."),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when the command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attribute, _help = entry
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Q2QError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(1)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            # The reader of our output went away (as with `| head`); stop quietly.
            sys.stderr.close()
            ctx.exit(1)
        except Exception as error:  # the CLI's one edge for bugs
            log_path = _write_traceback()
            click.echo(
                f"error: unexpected {type(error).__name__}: {error}\n"
                f"The traceback is in {log_path}; please report it.",
                err=True,
            )
            ctx.exit(1)


def _write_traceback() -> Path:
    directory = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "q2q"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        directory = Path(tempfile.gettempdir())
    path = directory / "last-error.log"
    path.write_text(traceback.format_exc())
    return path


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Log more: -v for each change, -vv for debug.")
@click.version_option(package_name="q2q-registry")
def cli(verbose: int) -> None:
    """q2q-registry: a GitOps registry for Q2Q classifier models.

    Model specs live as YAML in git. `q2q validate` checks them, `q2q plan`
    shows what a commit changes and `q2q apply` makes the database match the
    branch tip, with an audit record per change.
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("git").setLevel(logging.WARNING)


def main() -> None:
    cli(prog_name="q2q")
