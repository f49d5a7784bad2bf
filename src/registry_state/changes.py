"""Typed records of models and of the changes that a plan is made of.

`ModelRecord` is one model in normalised form, built from a spec (desired) or
from a database row (observed), so the two compare field by field. A `Plan` is
an ordered tuple of `Change`s; the planner computes it without I/O and the
store applies the same objects, so `q2q plan` shows exactly what `q2q apply`
does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ChangeKind(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    ACTIVATE = "activate"
    DEACTIVATE = "deactivate"
    RETIRE = "retire"
    RESTORE = "restore"


# Changes apply in this order: every deactivation (retirements included) comes
# before any activation, so the one-active-per-provider index is satisfied after each
# statement, not only at commit.
APPLY_ORDER = (
    ChangeKind.RETIRE,
    ChangeKind.DEACTIVATE,
    ChangeKind.CREATE,
    ChangeKind.RESTORE,
    ChangeKind.UPDATE,
    ChangeKind.ACTIVATE,
)

MUTABLE_FIELDS = ("effective_from", "declared_active", "description", "source_path")
"""Fields a spec may change without a new id."""


@dataclass(frozen=True)
class ModelRecord:
    """One model's configuration and state, as git declares it or the database stores it."""

    model_id: str
    provider: str
    model_name: str
    prompt_version: str
    thresholds: Mapping[str, float | int]
    effective_from: dt.datetime
    declared_active: bool
    description: str | None
    config_hash: str
    source_path: str | None
    active: bool = False
    retired: bool = False
    managed: bool = True

    def identity(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model_name,
            "prompt_version": self.prompt_version,
            "thresholds": dict(sorted(self.thresholds.items())),
        }

    def as_json(self) -> dict[str, Any]:
        """Return the fields as JSON-ready values, for audit records and plan output."""
        values = dataclasses.asdict(self)
        values["thresholds"] = dict(sorted(self.thresholds.items()))
        values["effective_from"] = self.effective_from.isoformat()
        return values


@dataclass(frozen=True)
class Change:
    """One step of a plan, with the values of the changed fields before and after."""

    kind: ChangeKind
    model_id: str
    provider: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    reason: str = ""
    self_heal: bool = False
    """True when the change reverts an out-of-band edit of the database."""

    @property
    def audit_kind(self) -> str:
        """Return the audit record's change kind: `self-heal` for reverted edits."""
        return "self-heal" if self.self_heal else self.kind.value

    def describe(self) -> str:
        """Return a one-line summary for people, such as `update q2q-x: description`."""
        text = f"{self.kind.value} {self.model_id}"
        if self.kind is ChangeKind.UPDATE and self.after:
            text += ": " + ", ".join(
                f"{name} {_short(self.before, name)} -> {_short(self.after, name)}"
                for name in self.after
            )
        if self.reason:
            text += f" ({self.reason})"
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "modelId": self.model_id,
            "provider": self.provider,
            "before": _jsonable(self.before),
            "after": _jsonable(self.after),
            "reason": self.reason or None,
            "selfHeal": self.self_heal,
        }


def _short(values: Mapping[str, Any] | None, name: str) -> str:
    value = None if values is None else values.get(name)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return repr(value)


def _jsonable(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {
        name: value.isoformat() if isinstance(value, dt.datetime) else value
        for name, value in values.items()
    }


@dataclass(frozen=True)
class Plan:
    """The ordered changes that turn observed into desired state."""

    changes: tuple[Change, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def counts(self) -> dict[str, int]:
        counted = Counter(change.kind.value for change in self.changes)
        return {kind.value: counted[kind.value] for kind in APPLY_ORDER if counted[kind.value]}

    def of_kind(self, kind: ChangeKind) -> list[Change]:
        return [change for change in self.changes if change.kind is kind]
