"""`q2q plan` and `q2q apply`: show, then make, the changes a commit needs.

Both read the branch tip's tree (never the working tree) and compare it with
the database. `plan` follows terraform's `-detailed-exitcode`: 0 no changes,
2 changes pending, 1 error.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from reconciler.cli.options import (
    build_reconciler,
    db_option,
    format_option,
    print_json,
    source_options,
)
from reconciler.reconcile import PassFailedError, PassResult, describe_counts
from registry_state.changes import ChangeKind
from registry_state.errors import InvalidSpecsError, Severity

_SYMBOLS = {
    ChangeKind.CREATE: "+",
    ChangeKind.RESTORE: "+",
    ChangeKind.UPDATE: "~",
    ChangeKind.ACTIVATE: ">",
    ChangeKind.DEACTIVATE: "<",
    ChangeKind.RETIRE: "-",
}


def result_json(result: PassResult) -> dict[str, Any]:
    return {
        "runId": str(result.run_id),
        "status": result.status,
        "revision": result.revision,
        "changes": [change.as_json() for change in result.plan.changes],
        "counts": result.plan.counts(),
        "problems": [p.as_json() for p in result.problems],
        "nextCutoverAt": result.next_cutover_at.isoformat() if result.next_cutover_at else None,
        "durationMs": round(result.duration_s * 1000, 1),
    }


def _print_changes(result: PassResult) -> None:
    for change in result.plan.changes:
        click.echo(f"  {_SYMBOLS[change.kind]} {change.describe()}")


def _print_problems(result: PassResult) -> None:
    for problem in result.problems:
        kind = "warning" if problem.severity is Severity.WARNING else "error"
        click.echo(f"{kind}: {problem}", err=True)


def _summary(result: PassResult) -> str:
    return describe_counts(result.plan)


@click.command()
@source_options
@db_option
@format_option("text", "json", "markdown")
def plan(repo: str, branch: str | None, spec_dir: str, database_url: str,
         output_format: str) -> None:
    """Show the changes that apply would make, without making them.

    Exits 0 when the database already matches the branch tip, 2 when changes
    are pending and 1 on an error (invalid specs, unreadable repository).
    --format markdown prints a pull request comment: the changes, each
    provider's cutover with its threshold changes, the evaluation gate
    results (when policies/gates.yaml exists) and the warnings.
    """
    reconciler = build_reconciler(
        repo=repo, branch=branch, spec_dir=spec_dir, database_url=database_url
    )
    try:
        result = reconciler.plan()
    except InvalidSpecsError as error:
        if output_format == "json":
            print_json({"status": "invalid", "problems": [p.as_json() for p in error.problems]})
        if output_format == "markdown":
            from reconciler.cli import plan_markdown

            click.echo(plan_markdown.render_invalid(
                source=reconciler.source.describe(), problems=error.problems), nl=False)
        for problem in error.problems:
            click.echo(f"{problem.severity.value}: {problem}", err=True)
        sys.exit(1)

    if output_format == "json":
        print_json(result_json(result))
    elif output_format == "markdown":
        from reconciler.cli import plan_markdown

        click.echo(plan_markdown.render_plan(
            source=reconciler.source.describe(), result=result,
            cutover_list=plan_markdown.plan_cutovers(reconciler, result),
            gate_results=plan_markdown.plan_gate_problems(reconciler, result)), nl=False)
    else:
        revision = (result.revision or "")[:12]
        click.echo(f"Plan for {reconciler.source.describe()} at {revision}: {_summary(result)}")
        _print_changes(result)
        _print_problems(result)
    sys.exit(2 if result.plan else 0)


@click.command()
@source_options
@db_option
@click.option(
    "--allow-mass-retire",
    is_flag=True,
    help="Apply even if the commit retires every model or more than the allowed share.",
)
@format_option("text", "json")
def apply(repo: str, branch: str | None, spec_dir: str, database_url: str,
          allow_mass_retire: bool, output_format: str) -> None:
    """Make the database match the branch tip, in one transaction.

    Writes an audit record per change naming the commit, its author and its
    subject. If any spec of the commit is invalid, nothing is applied and the
    previous revision stays in force; `q2q status` shows the error.
    """
    reconciler = build_reconciler(
        repo=repo, branch=branch, spec_dir=spec_dir, database_url=database_url,
        allow_mass_retire=allow_mass_retire,
    )
    try:
        result = reconciler.reconcile(trigger="cli")
    except PassFailedError as failure:
        if output_format == "json":
            print_json(result_json(failure.result) | {"error": str(failure.cause)})
        else:
            for problem in failure.result.problems:
                click.echo(f"{problem.severity.value}: {problem}", err=True)
            if not failure.result.problems:
                click.echo(f"error: {failure.cause}", err=True)
            click.echo(
                f"Nothing was applied; revision {(failure.result.revision or '?')[:12]} is "
                "recorded as last attempted. See 'q2q status'.",
                err=True,
            )
        sys.exit(1)

    if output_format == "json":
        print_json(result_json(result))
        return
    revision = (result.revision or "")[:12]
    if result.status == "unchanged":
        click.echo(f"Up to date at {revision}: no changes.")
    else:
        click.echo(f"Applied {revision}: {_summary(result)}.")
        _print_changes(result)
    _print_problems(result)
