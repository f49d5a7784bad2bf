"""`q2q plan --format markdown`: the plan as a pull request comment.

Renders what a reconcile pass would do as GitHub-flavoured Markdown: a count
of changes, a table of them, each provider's cutover (now or scheduled) with
the model, prompt and threshold differences, the evaluation gate results and
the warnings. The records
come from the same commit and database that the plan was computed from. The
`plan` command in `plan_apply` calls `render_plan` and `render_invalid`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from policies.gates import GATES_FILE, gate_problems
from reconciler.authoring.summary import CHANGE_SYMBOLS, Cutover, cutovers
from reconciler.desired import load_desired
from reconciler.planner import desired_records
from reconciler.reconcile import PassResult, Reconciler
from registry_state import store
from registry_state.changes import ChangeKind
from registry_state.errors import Problem, Severity

_KIND_ORDER = (ChangeKind.CREATE, ChangeKind.RESTORE, ChangeKind.ACTIVATE,
               ChangeKind.DEACTIVATE, ChangeKind.RETIRE, ChangeKind.UPDATE)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _problem_line(problem: Problem) -> str:
    where = f"{problem.field}: " if problem.field else ""
    return f"- `{problem.location}`: {_cell(where + problem.message)}"


def plan_cutovers(reconciler: Reconciler, result: PassResult) -> list[Cutover]:
    """Return the cutovers of `result`, from its commit's specs and the database's models."""
    if result.revision is None:
        return []
    commit = reconciler.source.resolve(result.revision)
    desired = load_desired(reconciler.source, commit, spec_dir=reconciler.options.spec_dir,
                           cache=reconciler.cache)
    now = reconciler.clock()
    with reconciler.engine.connect() as connection:
        observed = store.read_observed(connection)
    return cutovers(desired_records(desired.specs, now), observed, now=now)


def plan_gate_problems(reconciler: Reconciler, result: PassResult) -> list[Problem] | None:
    """Check the plan's active specs against policies/gates.yaml, or return None.

    The gates read evaluation reports and prompt files from the working tree,
    so they are checked only for a local repository that has policies/gates.yaml;
    in a pull request job the working tree is the commit being planned.
    """
    source = reconciler.source
    if result.revision is None or source.is_remote or source.repository.bare:
        return None
    repo_root = Path(source.location) / Path(reconciler.options.spec_dir).parent
    if not (repo_root / GATES_FILE).is_file():
        return None
    desired = load_desired(source, source.resolve(result.revision),
                           spec_dir=reconciler.options.spec_dir, cache=reconciler.cache)
    return gate_problems(repo_root, desired.specs, environ=os.environ)


def render_plan(*, source: str, result: PassResult, cutover_list: Sequence[Cutover],
                gate_results: Sequence[Problem] | None = None) -> str:
    """Return the Markdown comment for a plan that validated."""
    revision = (result.revision or "")[:12]
    lines = [f"### q2q plan for `{source}` at `{revision}`", ""]
    counts = result.plan.counts()
    if not result.plan:
        lines.append("**No changes**: the database already matches this revision.")
    else:
        summary = ", ".join(f"{count} {kind}" for kind, count in counts.items())
        lines += [f"**{_count(len(result.plan), 'change')}**: {summary}", "",
                  "| | change | model | provider | details |", "|---|---|---|---|---|"]
        order = {kind: index for index, kind in enumerate(_KIND_ORDER)}
        for change in sorted(result.plan.changes, key=lambda c: (order[c.kind], c.model_id)):
            details = change.describe().partition(change.model_id)[2].lstrip(": ")
            lines.append(
                f"| {CHANGE_SYMBOLS[change.kind]} | {change.kind.value} | `{change.model_id}` | "
                f"{change.provider} | {_cell(details)} |"
            )

    if cutover_list:
        lines += ["", "#### Cutovers", ""]
        for cutover in cutover_list:
            when = "now" if cutover.at is None else \
                f"at {cutover.at.isoformat().replace('+00:00', 'Z')}"
            lines.append(f"- **{cutover.provider}**: `{cutover.before_id or 'no model'}` → "
                         f"`{cutover.after_id or 'no model'}` {when}")
            if cutover.differences:
                lines += ["", "  | field | before | after |", "  |---|---|---|"]
                lines += [f"  | {_cell(d.name)} | {_cell(d.before)} | {_cell(d.after)} |"
                          for d in cutover.differences]
                lines.append("")
    if result.next_cutover_at is not None:
        instant = result.next_cutover_at.isoformat().replace("+00:00", "Z")
        lines += ["", f"Next scheduled cutover: {instant}"]
    if gate_results is not None:
        lines += ["", "#### Evaluation gates", ""]
        if gate_results:
            failures = _count(len(gate_results), "gate failure")
            lines += [f"**{failures}**; `q2q validate --gates` fails until they are fixed:",
                      "", *(_problem_line(p) for p in gate_results)]
        else:
            lines.append(f"Every active model passes `{GATES_FILE}`.")

    warnings = [p for p in result.problems if p.severity is Severity.WARNING]
    if warnings:
        lines += ["", "#### Warnings", "", *(_problem_line(p) for p in warnings)]
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip("\n") + "\n"


def render_invalid(*, source: str, problems: Sequence[Problem]) -> str:
    """Return the Markdown comment for a commit whose specs are invalid."""
    errors = [p for p in problems if p.severity is Severity.ERROR]
    lines = [f"### q2q plan for `{source}`: invalid", "",
             f"**{_count(len(errors), 'error')}**; nothing would be applied. Run "
             "`q2q validate` to see them locally.", "", *(_problem_line(p) for p in problems)]
    return "\n".join(lines) + "\n"
