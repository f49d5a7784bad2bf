"""Exceptions of q2q-registry and the problem records that validation produces.

Every exception the product raises on purpose derives from `Q2QError`, so the
CLI and the HTTP API can tell an expected failure (print a one-line message,
exit non-zero) from a bug (log the traceback). A `Problem` is one finding of
loading or validation with its source position; an invalid commit yields a
list of them inside `InvalidSpecsError`.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding about a file of desired state, positioned for an editor."""

    path: str
    line: int | None = None
    column: int | None = None
    field: str = ""
    message: str = ""
    severity: Severity = Severity.ERROR
    related: tuple[str, ...] = dataclasses.field(default=(), compare=False)

    def sort_key(self) -> tuple[str, int, int, str, str, str]:
        return (self.path, self.line or 0, self.column or 0, self.field, self.message,
                self.severity.value)

    def __lt__(self, other: Problem) -> bool:
        return self.sort_key() < other.sort_key()

    @property
    def location(self) -> str:
        """Return `path:line:column`, leaving out the parts that are unknown."""
        parts = [self.path]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        prefix = f"{self.location}: "
        where = f"{self.field}: " if self.field else ""
        return f"{prefix}{where}{self.message}"

    def as_json(self) -> dict[str, object]:
        """Return the camelCase mapping used by `--format json` and the HTTP API."""
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "field": self.field or None,
            "message": self.message,
            "severity": self.severity.value,
        }


class Q2QError(Exception):
    """Base class of every error that q2q-registry raises on purpose."""


class InvalidSpecsError(Q2QError):
    """The desired state has at least one invalid spec, policy or settings file."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems)
        errors = [p for p in self.problems if p.severity is Severity.ERROR]
        first = str(errors[0]) if errors else "no details"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first}{more}")


class MassRetireRefusedError(Q2QError):
    """A plan would retire more models than the mass-retire guard allows."""


class GitSourceError(Q2QError):
    """The git repository, branch or path of the desired state cannot be read."""


class StoreUnavailableError(Q2QError):
    """The database cannot be reached or refused the connection."""


class SchemaOutdatedError(Q2QError):
    """The database schema is older than this version of q2q-registry."""


class ModelNotFoundError(Q2QError):
    """No model with the requested id or provider is recorded."""


class SpecEditError(Q2QError):
    """A spec file cannot be edited as requested; no file was written."""


class GitWriteError(Q2QError):
    """A branch, commit or revert in the models repository could not be made."""
