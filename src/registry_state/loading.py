"""Load spec files into validated specs, or positioned problems.

Input is a `SourceFile` (a path relative to the repository, its bytes and, when
it comes from git, its blob sha); output is a `FileResult` with the specs it
contains and the problems found. A file contains either one spec or a mapping with a
`models:` list, so the governance guide's models.yaml loads unchanged. Both
`q2q validate` (files on disk) and the reconciler (blobs of a commit) call this.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from registry_state import yaml_source
from registry_state.changes import ModelRecord
from registry_state.errors import Problem
from registry_state.spec import SpecBase
from registry_state.validation_messages import problems_from_error

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class SourceFile:
    """One file of desired state, read from disk or from a commit."""

    path: str
    content: bytes
    blob_sha: str | None = None


@dataclass(frozen=True)
class LoadedSpec:
    """A valid spec and where it was written."""

    spec: SpecBase
    path: str
    line: int

    @functools.cached_property
    def record(self) -> ModelRecord:
        """The spec as a `ModelRecord` that is not in effect; built once per object."""
        spec = self.spec
        return ModelRecord(
            model_id=spec.id,
            provider=spec.provider,
            model_name=spec.model,
            prompt_version=spec.prompt_version,
            thresholds=spec.threshold_values(),
            effective_from=spec.effective_from,
            declared_active=spec.active,
            description=spec.description,
            config_hash=spec.config_hash(),
            source_path=self.path,
        )


@dataclass
class FileResult:
    specs: list[LoadedSpec] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def load_spec_file(source: SourceFile, spec_model: type[SpecBase]) -> FileResult:
    """Parse and validate every spec in one file."""
    result = FileResult()
    try:
        data = yaml_source.load(source.content)
    except yaml_source.YamlSourceError as error:
        result.problems.append(
            Problem(source.path, error.line, error.column, message=error.message)
        )
        return result

    if data is None:
        result.problems.append(
            Problem(
                source.path,
                1,
                1,
                message="the file is empty; a spec file holds one spec or a 'models:' list",
            )
        )
        return result

    for item, prefix, line in _items(source, data, result):
        try:
            spec = spec_model.model_validate(item)
        except ValidationError as error:
            result.problems.extend(
                problems_from_error(
                    error, model=spec_model, path=source.path, content=source.content,
                    prefix=prefix,
                )
            )
            continue
        result.specs.append(LoadedSpec(spec=spec, path=source.path, line=line))
    return result


def _items(
    source: SourceFile, data: Any, result: FileResult
) -> Iterator[tuple[Any, tuple[str | int, ...], int]]:
    """Yield each spec mapping of a file with its location prefix and line."""
    if isinstance(data, dict) and "models" in data and "id" not in data:
        extra = sorted(str(key) for key in data if key != "models")
        if extra:
            position = yaml_source.locate(source.content, (extra[0],))
            result.problems.append(
                Problem(
                    source.path,
                    position.line if position else None,
                    position.column if position else None,
                    field=extra[0],
                    message=f"unknown top-level key '{extra[0]}' beside 'models:'; "
                    "a models file holds only the 'models:' list",
                )
            )
        models = data["models"]
        if not isinstance(models, list):
            position = yaml_source.locate(source.content, ("models",), key=False)
            result.problems.append(
                Problem(
                    source.path,
                    position.line if position else None,
                    position.column if position else None,
                    field="models",
                    message="'models:' must be a list of specs, each starting with '- id: ...'",
                )
            )
            return
        lines = yaml_source.item_lines(source.content, "models")
        for index, item in enumerate(models):
            line = lines[index] if index < len(lines) else 1
            yield item, ("models", index), line
        return

    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"the value {data!r}"
        result.problems.append(
            Problem(
                source.path,
                1,
                1,
                message=f"expected a spec (a mapping with id, provider, model, ...) or a "
                f"mapping with a 'models:' list, but the file holds {kind}",
            )
        )
        return
    yield data, (), _first_content_line(source.content)


def _first_content_line(content: bytes) -> int:
    """Return the line where a single-spec file's mapping starts, past comments and '---'.

    A text scan is enough here and avoids parsing the file a second time.
    """
    for number, raw in enumerate(content.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith((b"#", b"%", b"---")):
            return number
    return 1
