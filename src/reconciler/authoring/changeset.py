"""Decide which spec fields `q2q activate`, `deactivate` and `new` change.

Input: the valid specs of the spec directory, the spec id and the instant to
judge activation at. Output: a `ChangeSet` of field edits (file, spec id,
field, value before and after), a commit subject and notes for the person
running the command. Nothing here reads or writes files; `workspace` applies
the edits to the text and the CLI commits them.

Activation follows the registry's rule: among a provider's specs with
`active: true`, the one with the latest `effective_from` not in the future is
in effect. So activating now sets `active: true` on the spec and
`active: false` on the provider's other active specs that are already in
effect, and scheduling (`--at`) sets `effective_from` and `active: true` and
leaves the current model active until that instant.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from policies.activation import in_effect
from reconciler.authoring.edits import FieldPath, dotted
from reconciler.authoring.rendering import render_scalar
from registry_state.errors import SpecEditError
from registry_state.loading import LoadedSpec
from registry_state.spec import ID_PATTERN

COPY_FIELDS = ("model", "prompt_version", "description")
"""Fields besides thresholds that `q2q new` may set on the copy."""


@dataclass(frozen=True)
class FieldEdit:
    """One value to change in one spec of one file."""

    path: str
    spec_id: str
    field: FieldPath
    before: Any
    after: Any

    def describe(self) -> str:
        before, after = _shown(self.before), _shown(self.after)
        return f"{self.path}: {self.spec_id}: {dotted(self.field)} {before} -> {after}"


@dataclass(frozen=True)
class CopyRequest:
    """A new spec copied from an existing one, then changed by `edits`."""

    source_path: str
    source_id: str
    target_path: str
    new_id: str
    edits: tuple[FieldEdit, ...]


@dataclass(frozen=True)
class ChangeSet:
    """The edits of one authoring command, with its commit subject and notes for people."""

    subject: str
    edits: tuple[FieldEdit, ...] = ()
    copy: CopyRequest | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def is_empty(self) -> bool:
        return not self.edits and self.copy is None

    def descriptions(self) -> list[str]:
        lines = []
        if self.copy is not None:
            lines.append(
                f"{self.copy.target_path}: {self.copy.new_id}: new spec copied from "
                f"{self.copy.source_id} ({self.copy.source_path})"
            )
            lines += [edit.describe() for edit in self.copy.edits]
        return lines + [edit.describe() for edit in self.edits]


def _shown(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    return render_scalar(value)


def _where(loaded: LoadedSpec) -> str:
    return f"{loaded.path}:{loaded.line}"


def find_spec(specs: Sequence[LoadedSpec], spec_id: str, *, directory: str) -> LoadedSpec:
    """Return the spec with `spec_id`, or raise `SpecEditError` that lists close ids."""
    for loaded in specs:
        if loaded.spec.id == spec_id:
            return loaded
    known = sorted(loaded.spec.id for loaded in specs)
    close = sorted(difflib.get_close_matches(spec_id, known, n=5))
    if close:
        hint = f"did you mean {', '.join(close)}?"
    else:
        hint = f"ids: {', '.join(known[:10]) or 'none'}{', ...' if len(known) > 10 else ''}"
    raise SpecEditError(
        f"no spec with id '{spec_id}' under {directory} ({hint}); check the id, or pass the "
        "spec directory with --path"
    )


def activate(
    specs: Sequence[LoadedSpec],
    spec_id: str,
    *,
    now: dt.datetime,
    directory: str,
    at: dt.datetime | None = None,
    at_text: str | None = None,
) -> ChangeSet:
    """Return the edits that put `spec_id` in effect now, or at `at` when given."""
    target = find_spec(specs, spec_id, directory=directory)
    spec = target.spec
    rivals = [
        loaded for loaded in specs
        if loaded.spec.provider == spec.provider and loaded.spec.id != spec_id
        and loaded.spec.active
    ]
    if at is not None:
        return _schedule(target, rivals, now=now, at=at, at_text=at_text or at.isoformat())

    if spec.effective_from > now:
        instant = _shown(spec.effective_from)
        raise SpecEditError(
            f"{_where(target)}: effective_from: '{spec_id}' takes effect at {instant}, which is "
            f"in the future, so it cannot be activated now; run 'q2q activate {spec_id} --at "
            f"{instant}' to schedule the cutover, or set an earlier effective_from"
        )
    edits = []
    if not spec.active:
        edits.append(FieldEdit(target.path, spec_id, ("active",), False, True))
    notes = []
    deactivated = []
    for rival in rivals:
        if rival.spec.effective_from <= now:
            edits.append(FieldEdit(rival.path, rival.spec.id, ("active",), True, False))
            deactivated.append(rival.spec.id)
        else:
            notes.append(
                f"'{rival.spec.id}' stays scheduled to take over {spec.provider} at "
                f"{_shown(rival.spec.effective_from)}; run 'q2q deactivate {rival.spec.id}' "
                "to cancel that cutover"
            )
    if not edits:
        return ChangeSet(
            subject="",
            notes=(f"'{spec_id}' is already the active {spec.provider} model; nothing to change",
                   *notes),
        )
    subject = f"Activate {spec_id}"
    if len(deactivated) == 1:
        subject += f", deactivate {deactivated[0]}"
    elif deactivated:
        subject += f", deactivate {len(deactivated)} {spec.provider} models"
    return ChangeSet(subject=subject, edits=tuple(edits), notes=tuple(notes))


def _schedule(
    target: LoadedSpec,
    rivals: Sequence[LoadedSpec],
    *,
    now: dt.datetime,
    at: dt.datetime,
    at_text: str,
) -> ChangeSet:
    spec = target.spec
    if at <= now:
        raise SpecEditError(
            f"--at {at_text} is not in the future (now is {_shown(now)}); leave out --at to "
            f"activate '{spec.id}' now"
        )
    edits = []
    if spec.effective_from != at:
        edits.append(FieldEdit(target.path, spec.id, ("effective_from",), spec.effective_from,
                               at_text))
    if not spec.active:
        edits.append(FieldEdit(target.path, spec.id, ("active",), False, True))
    if not edits:
        return ChangeSet(
            subject="",
            notes=(f"'{spec.id}' is already scheduled to take effect at {_shown(at)}; "
                   "nothing to change",),
        )

    notes = []
    current = in_effect([rival.spec for rival in rivals], now).get(spec.provider)
    if current is not None:
        notes.append(
            f"'{current.id}' stays the active {spec.provider} model until {_shown(at)}; after "
            f"the cutover, 'q2q validate' warns that it is superseded until you run "
            f"'q2q deactivate {current.id}'"
        )
    later = sorted(
        (rival.spec for rival in rivals if rival.spec.effective_from > at),
        key=lambda other: other.effective_from,
    )
    if later:
        notes.append(
            f"'{later[0].id}' is scheduled later, at {_shown(later[0].effective_from)}, and "
            f"will replace '{spec.id}' then"
        )
    return ChangeSet(
        subject=f"Schedule {spec.id} to take effect at {at_text}",
        edits=tuple(edits),
        notes=tuple(notes),
    )


def deactivate(
    specs: Sequence[LoadedSpec], spec_id: str, *, now: dt.datetime, directory: str
) -> ChangeSet:
    """Return the edit that sets `active: false` on `spec_id`, with what takes its place."""
    target = find_spec(specs, spec_id, directory=directory)
    spec = target.spec
    if not spec.active:
        return ChangeSet(subject="", notes=(f"'{spec_id}' is already inactive; nothing to change",))

    remaining = [
        loaded.spec for loaded in specs
        if loaded.spec.provider == spec.provider and loaded.spec.id != spec_id
    ]
    was_current = in_effect([*remaining, spec], now).get(spec.provider) is spec
    successor = in_effect(remaining, now).get(spec.provider)
    notes = []
    if spec.effective_from > now:
        notes.append(f"this cancels the cutover to '{spec_id}' scheduled for "
                     f"{_shown(spec.effective_from)}")
    elif was_current and successor is not None:
        notes.append(f"'{successor.id}' becomes the active {spec.provider} model, because it "
                     "is the latest other active spec in effect")
    elif was_current:
        notes.append(f"{spec.provider} has no active model after this change; run "
                     f"'q2q activate ID' for another {spec.provider} spec to replace it")
    return ChangeSet(
        subject=f"Deactivate {spec_id}",
        edits=(FieldEdit(target.path, spec_id, ("active",), True, False),),
        notes=tuple(notes),
    )


def copy_spec(
    specs: Sequence[LoadedSpec],
    source_id: str,
    *,
    new_id: str,
    directory: str,
    list_files: Collection[str] = (),
    overrides: Mapping[FieldPath, Any] | None = None,
) -> ChangeSet:
    """Return a copy of `source_id` under `new_id`, inactive, with `overrides` applied.

    A spec alone in its file is copied to a new file beside it, named after the
    new id. A spec in one of `list_files` (files with a `models:` list) is
    appended to that list.
    """
    source = find_spec(specs, source_id, directory=directory)
    if not re.match(ID_PATTERN, new_id) or len(new_id) > 100:
        raise SpecEditError(
            f"'{new_id}' is not a valid id; use lowercase letters, digits, '.' and '-', "
            "starting with a letter or digit, at most 100 characters"
        )
    for loaded in specs:
        if loaded.spec.id == new_id:
            raise SpecEditError(f"{_where(loaded)}: id '{new_id}' already exists; pick a new id")

    spec = source.spec
    thresholds = spec.threshold_values()
    target_path = source.path
    if source.path not in list_files:
        source_file = PurePosixPath(source.path)
        target_path = str(source_file.with_name(new_id + source_file.suffix))
    edits = [FieldEdit(target_path, new_id, ("id",), source_id, new_id)]
    if spec.active:
        edits.append(FieldEdit(target_path, new_id, ("active",), True, False))
    for path, value in (overrides or {}).items():
        if path[0] == "thresholds":
            if len(path) != 2 or path[1] not in thresholds:
                raise SpecEditError(
                    f"unknown threshold '{dotted(path[1:])}'; the thresholds are "
                    f"{', '.join(thresholds)}"
                )
            before = thresholds[path[1]]
        elif path in {(name,) for name in COPY_FIELDS}:
            before = getattr(spec, path[0])
        else:
            raise SpecEditError(f"'{dotted(path)}' cannot be set on a copy")
        if before != value:
            edits.append(FieldEdit(target_path, new_id, path, before, value))
    return ChangeSet(
        subject=f"Add {new_id}, copied from {source_id}",
        copy=CopyRequest(source.path, source_id, target_path, new_id, tuple(edits)),
        notes=(f"'{new_id}' is inactive; run 'q2q activate {new_id}' when it is ready",),
    )
