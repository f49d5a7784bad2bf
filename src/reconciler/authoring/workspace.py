"""The spec directory on disk: read it, apply a `ChangeSet` in memory, check it, write it.

Input: a spec directory in the working tree (as `q2q validate` reads it) and
the edits of one authoring command. Output: the new content of each changed
file, written only after the whole directory still validates with the change.
The authoring CLI commands call it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from policies.spec_rules import check_specs
from reconciler.authoring.changeset import ChangeSet, CopyRequest, FieldEdit
from reconciler.authoring.edits import SpecEntry, SpecText
from registry_state import yaml_source
from registry_state.errors import InvalidSpecsError, Problem, Severity, SpecEditError
from registry_state.loading import YAML_SUFFIXES, LoadedSpec, SourceFile, load_spec_file
from registry_state.repo_settings import SETTINGS_FILE, RepositorySettings, parse_settings
from registry_state.spec import SpecBase, spec_model_for

MAX_PROBLEMS_LISTED = 20


def display_path(path: Path) -> str:
    """Return `path` relative to the current directory when it is below it."""
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else Path(relative).as_posix()


@dataclass(frozen=True)
class EditedFiles:
    """The new content of each changed file, and one `path:line: change` line per edit."""

    contents: dict[str, bytes]
    located: list[str]


@dataclass(frozen=True)
class DirectoryState:
    """The specs of a directory's files and every problem found in them."""

    specs: list[LoadedSpec]
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]


class SpecDirectory:
    """The YAML files under one spec directory, read once and edited in memory."""

    def __init__(self, directory: Path) -> None:
        if not directory.is_dir():
            raise SpecEditError(
                f"spec directory '{display_path(directory)}' not found; pass it with --path"
            )
        self.directory = directory
        self.name = display_path(directory)
        self.contents: dict[str, bytes] = {
            display_path(path): path.read_bytes()
            for path in sorted(directory.rglob("*"))
            if path.suffix in YAML_SUFFIXES and path.is_file()
        }
        self.settings_problems: list[Problem] = []
        settings_file = directory.resolve().parent / SETTINGS_FILE
        try:
            content = settings_file.read_bytes() if settings_file.is_file() else None
            settings = parse_settings(content, path=display_path(settings_file))
        except InvalidSpecsError as error:
            settings = RepositorySettings()
            self.settings_problems = error.problems
        self.spec_model: type[SpecBase] = spec_model_for(settings.label_taxonomy())

    def state(
        self, *, now: dt.datetime, changed: Mapping[str, bytes] | None = None
    ) -> DirectoryState:
        """Load and check every file, with `changed` contents in place of the ones on disk."""
        contents = self.contents | dict(changed or {})
        specs: list[LoadedSpec] = []
        problems = list(self.settings_problems)
        for path, content in sorted(contents.items()):
            result = load_spec_file(SourceFile(path, content), self.spec_model)
            specs += result.specs
            problems += result.problems
        problems += check_specs(specs, now=now)
        return DirectoryState(specs, sorted(problems))

    def valid_specs(self, *, now: dt.datetime) -> list[LoadedSpec]:
        """Return the specs, or raise `SpecEditError` if the directory has errors now."""
        state = self.state(now=now)
        if state.errors:
            raise SpecEditError(
                f"the specs under {self.name} have errors, so the change cannot be checked; "
                f"fix them first (run 'q2q validate {self.name}'):\n{_listed(state.errors)}"
            )
        return state.specs

    def list_files(self) -> set[str]:
        """Return the paths of files that contain a `models:` list rather than one spec."""
        paths = set()
        for path, content in self.contents.items():
            try:
                data = yaml_source.load(content)
            except yaml_source.YamlSourceError:
                continue
            if isinstance(data, dict) and "models" in data and "id" not in data:
                paths.add(path)
        return paths

    def apply(self, changes: ChangeSet) -> EditedFiles:
        """Return the new content of each file that `changes` edits or creates."""
        texts: dict[str, SpecText] = {}
        located: list[str] = []

        def text_of(path: str) -> SpecText:
            if path not in texts:
                texts[path] = SpecText(path, self.contents[path])
            return texts[path]

        if changes.copy is not None:
            copied, copy_entry = self._copy(changes.copy, text_of)
            texts[changes.copy.target_path] = copied
            located.append(f"{copied.path}:{copy_entry.line}: {changes.copy.new_id}: new spec "
                           f"copied from {changes.copy.source_id}")
            located += [_located(copied, copy_entry, edit) for edit in changes.copy.edits]
        for edit in changes.edits:
            text = text_of(edit.path)
            entry = text.find(edit.spec_id)
            if entry is None:
                raise SpecEditError(f"{edit.path}: no spec '{edit.spec_id}' to edit")
            text = texts[edit.path] = text.with_value(entry, edit.field, edit.after)
            located.append(_located(text, entry, edit))
        contents = {
            path: text.content for path, text in texts.items()
            if text.content != self.contents.get(path)
        }
        return EditedFiles(contents, located)

    def _copy(
        self, request: CopyRequest, text_of: Callable[[str], SpecText]
    ) -> tuple[SpecText, SpecEntry]:
        source = text_of(request.source_path)
        entry = source.find(request.source_id)
        if entry is None:
            raise SpecEditError(f"{request.source_path}: no spec '{request.source_id}' to copy")
        if entry.index is None:
            if request.target_path in self.contents or Path(request.target_path).exists():
                raise SpecEditError(
                    f"{request.target_path} already exists; pick another id, or move that file"
                )
            copied = SpecText(request.target_path, source.content)
            entry = copied.entries[0]
        else:
            copied, entry = source.with_copy(entry)
        for edit in request.edits:
            copied = copied.with_value(entry, edit.field, edit.after)
            entry = copied.entries[-1]
        return copied, entry

    def check(
        self, changed: Mapping[str, bytes], *, now: dt.datetime, action: str
    ) -> DirectoryState:
        """Return the directory's state with `changed`; raise `SpecEditError` on any error."""
        state = self.state(now=now, changed=changed)
        if state.errors:
            raise SpecEditError(
                f"{action} would leave the specs invalid, so no file was written:\n"
                f"{_listed(state.errors)}"
            )
        return state

    def write(self, changed: Mapping[str, bytes]) -> list[Path]:
        """Write each changed file, creating new ones, and return their paths."""
        written = []
        for path, content in sorted(changed.items()):
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            self.contents[path] = content
            written.append(target)
        return written


def _located(text: SpecText, entry: SpecEntry, edit: FieldEdit) -> str:
    line = text.line_of(entry, edit.field)
    return f"{text.path}:{line}: {edit.describe().partition(': ')[2]}"


def _listed(problems: Iterable[Problem]) -> str:
    found = list(problems)
    lines = [f"  {problem}" for problem in found[:MAX_PROBLEMS_LISTED]]
    if len(found) > MAX_PROBLEMS_LISTED:
        lines.append(f"  ... and {len(found) - MAX_PROBLEMS_LISTED} more")
    return "\n".join(lines)
