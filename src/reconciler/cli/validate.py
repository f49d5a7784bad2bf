"""`q2q validate [DIR]`: check spec files on disk, for pre-commit hooks and CI.

Reads every YAML file under DIR (the working tree, not a commit), validates
each spec and the specs together, and prints one `FILE:LINE:COL: message` line
per problem. With `--base REV` it also checks that ids keep their identities
from REV and its history, and prints what the change does to the models. Exit
status 0 means valid (warnings allowed), 1 invalid.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from policies.spec_rules import check_specs
from registry_state.errors import InvalidSpecsError, Problem, Severity
from registry_state.loading import LoadedSpec, SourceFile, load_spec_file
from registry_state.repo_settings import SETTINGS_FILE, RepositorySettings, parse_settings
from registry_state.spec import spec_model_for

if TYPE_CHECKING:
    from reconciler.authoring.summary import Cutover
    from registry_state.changes import Plan

FORMATS = ("text", "json", "github")


def _display(path: Path) -> str:
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else Path(relative).as_posix()


def validate_directory(directory: Path) -> tuple[list[LoadedSpec], list[Problem], int]:
    """Validate every YAML file under `directory`; return specs, problems and file count."""
    specs, problems, file_count = load_directory(directory)
    problems += check_specs(specs, now=dt.datetime.now(dt.UTC))
    problems += drift_policy_problems(directory.resolve().parent)
    return specs, sorted(problems), file_count


DRIFT_POLICY_FILE = "policies/drift.yaml"


def drift_policy_problems(repo_root: Path) -> list[Problem]:
    """Validate policies/drift.yaml beside the spec directory, when there is one."""
    path = repo_root / DRIFT_POLICY_FILE
    if not path.is_file():
        return []
    # Imported here: the drift modules cost start-up time that most runs do not need.
    from policies.drift_policy import parse_policies

    try:
        parse_policies(path.read_bytes(), path=_display(path))
    except InvalidSpecsError as error:
        return list(error.problems)
    return []


def load_directory(directory: Path) -> tuple[list[LoadedSpec], list[Problem], int]:
    """Load every YAML file under `directory`, checking each file but not the specs together."""
    problems: list[Problem] = []
    settings_file = directory.resolve().parent / SETTINGS_FILE
    try:
        content = settings_file.read_bytes() if settings_file.is_file() else None
        settings = parse_settings(content, path=_display(settings_file))
    except InvalidSpecsError as error:
        settings = RepositorySettings()
        problems += error.problems
    spec_model = spec_model_for(settings.label_taxonomy())

    paths = sorted(
        path for path in directory.rglob("*")
        if path.suffix in (".yaml", ".yml") and path.is_file()
    )
    specs: list[LoadedSpec] = []
    for path in paths:
        result = load_spec_file(SourceFile(_display(path), path.read_bytes()), spec_model)
        specs += result.specs
        problems += result.problems
    return specs, problems, len(paths)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _text_line(problem: Problem) -> str:
    where = f"{problem.field}: " if problem.field else ""
    kind = "warning: " if problem.severity is Severity.WARNING else ""
    return f"{problem.location}: {kind}{where}{problem.message}"


def _escape_property(value: str) -> str:
    """Escape a workflow-command property value as GitHub Actions expects."""
    for raw, escaped in (("%", "%25"), ("\r", "%0D"), ("\n", "%0A"), (":", "%3A"), (",", "%2C")):
        value = value.replace(raw, escaped)
    return value


def _github_line(problem: Problem) -> str:
    level = "warning" if problem.severity is Severity.WARNING else "error"
    properties = [f"file={_escape_property(problem.path)}"]
    if problem.line is not None:
        properties.append(f"line={problem.line}")
    if problem.column is not None:
        properties.append(f"col={problem.column}")
    properties.append("title=q2q validate")
    message = f"{problem.field}: {problem.message}" if problem.field else problem.message
    message = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return f"::{level} {','.join(properties)}::{message}"


@dataclass(frozen=True)
class BaseReport:
    """The changes that the working tree makes against the base revision."""

    revision: str
    subject: str
    plan: Plan
    cutovers: list[Cutover]

    def lines(self) -> list[str]:
        from reconciler.authoring.summary import change_lines

        header = f'Changes against base {self.revision[:12]} ("{self.subject}")'
        if not self.plan and not self.cutovers:
            return [f"{header}: none to the models"]
        return [f"{header}:", *(f"  {line}" for line in change_lines(self.plan)),
                *(f"  {cutover.describe()}" for cutover in self.cutovers)]

    def as_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "subject": self.subject,
            "counts": self.plan.counts(),
            "changes": [change.as_json() for change in self.plan.changes],
            "cutovers": [cutover.as_json() for cutover in self.cutovers],
        }


def validate_against_base(
    directory: Path, base: str
) -> tuple[list[LoadedSpec], list[Problem], int, BaseReport]:
    """Validate `directory`, checking its ids against their identities at `base` and before."""
    # Imported here so that `q2q validate` without --base loads neither git nor the planner.
    from reconciler.authoring.base_revision import compare_with_base
    from reconciler.authoring.summary import compare_specs

    now = dt.datetime.now(dt.UTC)
    specs, problems, file_count = load_directory(directory)
    comparison = compare_with_base(directory, base, head_specs=specs)
    problems += check_specs(specs, now=now, recorded=comparison.recorded())
    retired = [found.loaded for found in comparison.retired.values()]
    plan, cutovers = compare_specs(comparison.specs, specs, now=now, retired=retired)
    report = BaseReport(comparison.commit.revision, comparison.commit.subject, plan, cutovers)
    return specs, sorted(problems), file_count, report


@click.command()
@click.argument(
    "directory",
    default="models",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text: FILE:LINE:COL lines; json: one document; github: workflow annotations.",
)
@click.option(
    "--base",
    "base_revision",
    metavar="REV",
    help="Also check against the specs at REV, the pull request's target (such as "
    "origin/main), and print what the change does to the models.",
)
@click.option(
    "--gates",
    "check_gates",
    is_flag=True,
    help="Also require every spec with active: true to have an evaluation report in evals/ "
    "that is current, signed when required, and meets policies/gates.yaml.",
)
def validate(
    directory: Path, output_format: str, base_revision: str | None, check_gates: bool
) -> None:
    """Validate the spec files under DIRECTORY (default: models).

    Checks each file's YAML and schema, then the specs together: unique ids
    and at most one active model per provider at any instant. registry.yaml
    beside DIRECTORY may declare the label taxonomy; policies/drift.yaml beside
    it is validated too. Exits 0 when valid, 1 when any error is found.

    With --base REV (for pull request checks), an id must keep the identity
    (provider, model, prompt version, thresholds) it has at REV, and an id
    removed before REV must not come back with another configuration. A
    summary of the creates, activations, retirements and threshold changes
    follows the problems.
    """
    report: BaseReport | None = None
    if base_revision is None:
        specs, problems, file_count = validate_directory(directory)
    else:
        specs, problems, file_count, report = validate_against_base(directory, base_revision)
    if check_gates:
        from policies.gates import gate_problems

        repo_root = directory.resolve().parent
        problems = sorted([*problems, *gate_problems(repo_root, specs, environ=os.environ)])
    errors = [p for p in problems if p.severity is Severity.ERROR]
    warnings = len(problems) - len(errors)

    if output_format == "json":
        document: dict[str, Any] = {
            "valid": not errors,
            "files": file_count,
            "specs": len(specs),
            "errors": len(errors),
            "warnings": warnings,
            "problems": [p.as_json() for p in problems],
        }
        if report is not None:
            document["base"] = report.as_json()
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render = _github_line if output_format == "github" else _text_line
        for problem in problems:
            click.echo(render(problem))
        for line in report.lines() if report is not None else []:
            click.echo(line)
        verdict = "invalid" if errors else "valid"
        click.echo(
            f"{_display(directory)}: {verdict}: {_count(file_count, 'file')}, "
            f"{_count(len(specs), 'spec')}, {_count(len(errors), 'error')}, "
            f"{_count(warnings, 'warning')}",
            err=True,
        )
    sys.exit(1 if errors else 0)
