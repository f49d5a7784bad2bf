"""`q2q validate [DIR]`: check spec files on disk, for pre-commit hooks and CI.

Reads every YAML file under DIR (the working tree, not a commit), validates
each spec and the specs together, and prints one `FILE:LINE:COL: message` line
per problem. Exit status 0 means valid (warnings allowed), 1 invalid.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import click

from policies.spec_rules import check_specs
from registry_state.errors import InvalidSpecsError, Problem, Severity
from registry_state.loading import LoadedSpec, SourceFile, load_spec_file
from registry_state.repo_settings import SETTINGS_FILE, RepositorySettings, parse_settings
from registry_state.spec import spec_model_for

FORMATS = ("text", "json", "github")


def _display(path: Path) -> str:
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else Path(relative).as_posix()


def validate_directory(directory: Path) -> tuple[list[LoadedSpec], list[Problem], int]:
    """Validate every YAML file under `directory`; return specs, problems and file count."""
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
    problems += check_specs(specs, now=dt.datetime.now(dt.UTC))
    return specs, sorted(problems), len(paths)


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
    "--gates",
    "check_gates",
    is_flag=True,
    help="Also require every spec with active: true to have an evaluation report in evals/ "
    "that is current, signed when required, and meets policies/gates.yaml.",
)
def validate(directory: Path, output_format: str, check_gates: bool) -> None:
    """Validate the spec files under DIRECTORY (default: models).

    Checks each file's YAML and schema, then the specs together: unique ids
    and at most one active model per provider at any instant. registry.yaml
    beside DIRECTORY may declare the label taxonomy. Exits 0 when valid, 1 when
    any error is found.
    """
    specs, problems, file_count = validate_directory(directory)
    if check_gates:
        from policies.gates import gate_problems

        repo_root = directory.resolve().parent
        problems = sorted([*problems, *gate_problems(repo_root, specs, environ=os.environ)])
    errors = [p for p in problems if p.severity is Severity.ERROR]
    warnings = len(problems) - len(errors)

    if output_format == "json":
        document = {
            "valid": not errors,
            "files": file_count,
            "specs": len(specs),
            "errors": len(errors),
            "warnings": warnings,
            "problems": [p.as_json() for p in problems],
        }
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render = _github_line if output_format == "github" else _text_line
        for problem in problems:
            click.echo(render(problem))
        verdict = "invalid" if errors else "valid"
        click.echo(
            f"{_display(directory)}: {verdict}: {file_count} files, {len(specs)} specs, "
            f"{len(errors)} errors, {warnings} warnings",
            err=True,
        )
    sys.exit(1 if errors else 0)
