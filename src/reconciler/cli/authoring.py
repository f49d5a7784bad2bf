"""`q2q new`, `activate`, `deactivate` and `rollback`: change models by pull request.

The first three edit spec files in the working tree in place, keeping every
byte they do not change, and check that the whole spec directory still
validates before writing. With `--commit` (or `--branch NAME`) they commit the
edit on a new branch. `rollback` always commits, on a new branch, and never
rewrites existing commits. None of them touches the database: the reconciler
applies the change once it is merged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler.authoring import changeset
from reconciler.authoring.changeset import ChangeSet
from reconciler.authoring.edits import FieldPath
from reconciler.authoring.gitops import GitWorkspace
from reconciler.authoring.rollback import rollback as rollback_specs
from reconciler.authoring.workspace import SpecDirectory
from registry_state import yaml_source
from registry_state.errors import GitWriteError
from registry_state.spec import parse_effective_from

F = TypeVar("F", bound=Callable[..., Any])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def spec_dir_option(function: F) -> F:
    return click.option(
        "--path",
        "spec_dir",
        envvar="Q2Q_PATH",
        default="models",
        show_default=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Spec directory in the working tree; registry.yaml is read beside it "
        "[env: Q2Q_PATH].",
    )(function)


def commit_options(function: F) -> F:
    function = click.option(
        "--branch",
        metavar="NAME",
        help="Name of the new branch to commit on; implies --commit "
        "[default: q2q/COMMAND-ID].",
    )(function)
    return click.option(
        "--commit",
        "should_commit",
        is_flag=True,
        help="Commit the edit on a new branch, started from the checked-out branch and "
        "switched to.",
    )(function)


def _parse_instant(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return value.strip(), parse_effective_from(value.strip())
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _parse_thresholds(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[FieldPath, Any]:
    parsed: dict[FieldPath, Any] = {}
    for item in values:
        name, separator, text = item.partition("=")
        if not separator or not name.strip():
            raise click.BadParameter(f"'{item}' is not NAME=VALUE, such as risk_min_cues=2")
        try:
            value = yaml_source.load(text.strip().encode())
        except yaml_source.YamlSourceError:
            value = None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise click.BadParameter(
                f"threshold {name.strip()}: '{text}' is not a number; write it like 0.85 or 2"
            )
        parsed[("thresholds", name.strip())] = value
    return parsed


def _edit(
    directory: SpecDirectory,
    changes: ChangeSet,
    *,
    now: dt.datetime,
    command: str,
    should_commit: bool,
    branch: str,
) -> None:
    """Apply `changes` to the files, check the directory, write, and commit if asked."""
    if changes.is_empty:
        for note in changes.notes:
            click.echo(note)
        return
    edited = directory.apply(changes)
    state = directory.check(edited.contents, now=now, action=f"'{command}'")

    if should_commit:
        workspace = GitWorkspace(directory.directory)
        try:
            paths = [workspace.relative(Path(path)) for path in edited.contents]
            start = workspace.current_branch()
            workspace.check_unchanged(paths)
            workspace.create_branch(branch)
            directory.write(edited.contents)
            message = "\n".join([
                changes.subject, "",
                *changes.descriptions(),
                *(["", *changes.notes] if changes.notes else []),
                "", f"Made with '{command}'.",
            ]) + "\n"
            try:
                commit = workspace.commit_paths(paths, message)
            except GitWriteError as error:
                raise GitWriteError(
                    f"{error}. The edits are written on branch '{branch}' (started from "
                    f"'{start}') but not committed; fix the problem, then run 'git commit'"
                ) from None
        finally:
            workspace.close()
    else:
        directory.write(edited.contents)

    click.echo(f"{changes.subject}:")
    for line in edited.located:
        click.echo(f"  {line}")
    for warning in state.warnings:
        click.echo(f"warning: {warning}", err=True)
    for note in changes.notes:
        click.echo(f"note: {note}")
    if should_commit:
        click.echo(
            f"Committed {commit.short} on new branch '{branch}'. Next: push it with "
            f"'git push -u origin {branch}' and open a pull request."
        )
    else:
        click.echo(
            "Next: review the edit with 'git diff', then commit it, or run the command again "
            "with --commit to commit it on a new branch."
        )


@click.command("new")
@click.argument("new_id")
@click.option("--from", "source_id", required=True, metavar="ID",
              help="Id of the existing spec to copy.")
@click.option("--threshold", "thresholds", multiple=True, metavar="NAME=VALUE",
              callback=_parse_thresholds,
              help="Set one threshold on the copy, such as risk_min_cues=2; repeatable.")
@click.option("--model", help="Provider model name for the copy.")
@click.option("--prompt-version", help="Prompt version for the copy, such as v3.0.")
@click.option("--description", help="Description for the copy.")
@spec_dir_option
@commit_options
def new(
    new_id: str, source_id: str, thresholds: dict[FieldPath, Any], model: str | None,
    prompt_version: str | None, description: str | None, spec_dir: Path,
    should_commit: bool, branch: str | None,
) -> None:
    """Copy the spec ID given by --from under NEW_ID, inactive.

    A model's identity (provider, model, prompt version, thresholds) never
    changes under one id, so a new configuration needs a new spec: copy the
    current one and change what differs. A spec alone in its file is copied to
    NEW_ID.yaml beside it; a spec in a 'models:' list is appended to that list,
    comments included. Activate the copy later with 'q2q activate NEW_ID'.
    """
    now = _now()
    directory = SpecDirectory(spec_dir)
    specs = directory.valid_specs(now=now)
    overrides: dict[FieldPath, Any] = dict(thresholds)
    for name, value in (("model", model), ("prompt_version", prompt_version),
                        ("description", description)):
        if value is not None:
            overrides[(name,)] = value
    changes = changeset.copy_spec(
        specs, source_id, new_id=new_id, directory=directory.name,
        list_files=directory.list_files(), overrides=overrides,
    )
    _edit(directory, changes, now=now, command=f"q2q new {new_id} --from {source_id}",
          should_commit=should_commit or branch is not None,
          branch=branch or f"q2q/new-{new_id}")


@click.command()
@click.argument("model_id")
@click.option("--at", "at", metavar="TIME", callback=_parse_instant,
              help="Schedule the cutover for TIME, an ISO 8601 datetime with a UTC offset "
              "such as 2026-03-01T06:00:00Z, by setting effective_from; the current model "
              "stays active until then.")
@spec_dir_option
@commit_options
def activate(
    model_id: str, at: tuple[str, dt.datetime] | None, spec_dir: Path, should_commit: bool,
    branch: str | None,
) -> None:
    """Activate MODEL_ID, deactivating its provider's current model in the same change.

    Sets 'active: true' on MODEL_ID and 'active: false' on the provider's other
    active specs that are already in effect. With --at, sets effective_from and
    'active: true' instead and leaves the current model active: the reconciler
    switches the two at that instant, in one transaction.
    """
    now = _now()
    directory = SpecDirectory(spec_dir)
    specs = directory.valid_specs(now=now)
    at_text, at_instant = at if at is not None else (None, None)
    changes = changeset.activate(
        specs, model_id, now=now, directory=directory.name, at=at_instant, at_text=at_text,
    )
    command = f"q2q activate {model_id}" + (f" --at {at_text}" if at_text else "")
    _edit(directory, changes, now=now, command=command,
          should_commit=should_commit or branch is not None,
          branch=branch or f"q2q/activate-{model_id}")


@click.command()
@click.argument("model_id")
@spec_dir_option
@commit_options
def deactivate(model_id: str, spec_dir: Path, should_commit: bool, branch: str | None) -> None:
    """Deactivate MODEL_ID by setting 'active: false' in its spec.

    If it is the model in effect, the provider's latest other active spec in
    effect takes over, or the provider has no active model. The output names
    the outcome. Deactivating a scheduled spec cancels its cutover.
    """
    now = _now()
    directory = SpecDirectory(spec_dir)
    specs = directory.valid_specs(now=now)
    changes = changeset.deactivate(specs, model_id, now=now, directory=directory.name)
    _edit(directory, changes, now=now, command=f"q2q deactivate {model_id}",
          should_commit=should_commit or branch is not None,
          branch=branch or f"q2q/deactivate-{model_id}")


@click.command()
@click.option("--to", "revision", metavar="REV",
              help="Restore the spec directory as it was at REV (a commit sha, tag or branch) "
              "instead of reverting the last change.")
@spec_dir_option
@click.option("--branch", metavar="NAME",
              help="Name of the new branch [default: q2q/rollback-SHA or q2q/restore-SHA].")
def rollback(revision: str | None, spec_dir: Path, branch: str | None) -> None:
    """Roll the specs back in a new commit on a new branch.

    Without --to, reverts the last commit that changed the spec directory (for a
    merged pull request, its merge commit), as 'git revert' does. With --to REV,
    restores the spec directory to its content at REV, deleting specs added
    since. The new branch starts at the checked-out commit; no commit is
    rewritten. The result is validated before it is committed. Push the branch
    and merge it; the reconciler then applies the previous state.
    """
    result = rollback_specs(spec_dir, now=_now(), to=revision, branch=branch)
    if result.commit is None:
        click.echo(result.message)
        return
    click.echo(f"{result.message}:")
    for line in result.changes:
        click.echo(f"  {line}")
    for cutover in result.cutovers:
        click.echo(f"  {cutover.describe()}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"Committed {result.commit.short} on new branch '{result.branch}'. Next: push it with "
        f"'git push -u origin {result.branch}' and open a pull request."
    )
