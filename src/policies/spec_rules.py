"""Rules that judge the specs of one commit together, and against recorded models.

Input: the valid specs of a commit (with their source positions), the instant
to judge activation at, and the identities of models already recorded in the
database. Output: a list of `Problem`s, errors and warnings. The reconcile pass
and `q2q validate` call `check_specs`; nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policies.activation import in_effect
from registry_state.errors import Problem, Severity
from registry_state.loading import LoadedSpec
from registry_state.spec import IDENTITY_FIELDS


@dataclass(frozen=True)
class RecordedIdentity:
    """The identity fields of a model as the database, or a base revision, records them."""

    model_id: str
    identity: Mapping[str, Any]
    retired: bool
    origin: str = ""
    """Where the identity is recorded when not in the database, such as a base revision."""


def _where(loaded: LoadedSpec) -> str:
    return f"{loaded.path}:{loaded.line}"


def check_specs(
    specs: Sequence[LoadedSpec],
    *,
    now: dt.datetime,
    recorded: Mapping[str, RecordedIdentity] | None = None,
) -> list[Problem]:
    """Return every cross-spec problem: duplicates, activation conflicts, identity changes."""
    problems = _duplicate_ids(specs)
    problems += _activation_conflicts(specs, now)
    if recorded:
        problems += _identity_changes(specs, recorded)
    return problems


def _duplicate_ids(specs: Sequence[LoadedSpec]) -> list[Problem]:
    first_seen: dict[str, LoadedSpec] = {}
    problems = []
    for loaded in specs:
        first = first_seen.setdefault(loaded.spec.id, loaded)
        if first is loaded:
            continue
        problems.append(
            Problem(
                loaded.path,
                loaded.line,
                field="id",
                message=f"duplicate id '{loaded.spec.id}', also defined at {_where(first)}; "
                "give each spec its own id",
                related=(_where(first),),
            )
        )
    return problems


def _activation_conflicts(specs: Sequence[LoadedSpec], now: dt.datetime) -> list[Problem]:
    problems = []
    by_provider: dict[str, list[LoadedSpec]] = defaultdict(list)
    for loaded in specs:
        if loaded.spec.active:
            by_provider[loaded.spec.provider].append(loaded)

    for provider, active in sorted(by_provider.items()):
        by_instant: dict[dt.datetime, list[LoadedSpec]] = defaultdict(list)
        for loaded in active:
            by_instant[loaded.spec.effective_from].append(loaded)
        for instant, clash in sorted(by_instant.items()):
            if len(clash) < 2:
                continue
            names = " and ".join(f"'{c.spec.id}' ({_where(c)})" for c in clash)
            for loaded in clash:
                problems.append(
                    Problem(
                        loaded.path,
                        loaded.line,
                        field="active",
                        message=f"two active {provider} models take effect at the same instant "
                        f"{instant.isoformat()}: {names}; set 'active: false' on one of them "
                        "or give it another effective_from",
                        related=tuple(_where(c) for c in clash if c is not loaded),
                    )
                )

        current = in_effect([loaded.spec for loaded in active], now).get(provider)
        for loaded in active:
            spec = loaded.spec
            if current is None or spec is current or spec.effective_from > now:
                continue
            if spec.effective_from == current.effective_from:
                continue
            problems.append(
                Problem(
                    loaded.path,
                    loaded.line,
                    field="active",
                    severity=Severity.WARNING,
                    message=f"'{spec.id}' is superseded by '{current.id}', which took effect "
                    f"later ({current.effective_from.isoformat()}); set 'active: false' here "
                    "to say so",
                )
            )
    return problems


def _identity_changes(
    specs: Sequence[LoadedSpec], recorded: Mapping[str, RecordedIdentity]
) -> list[Problem]:
    problems = []
    for loaded in specs:
        before = recorded.get(loaded.spec.id)
        if before is None:
            continue
        after = loaded.spec.identity()
        changed = [name for name in IDENTITY_FIELDS if before.identity.get(name) != after[name]]
        if not changed:
            continue
        details = "; ".join(
            _describe_change(name, before.identity.get(name), after[name]) for name in changed
        )
        state = "retired model" if before.retired else "model"
        if before.origin:
            state += f" ({before.origin})"
        problems.append(
            Problem(
                loaded.path,
                loaded.line,
                field=changed[0],
                message=f"'{loaded.spec.id}' is a recorded {state} and its identity cannot "
                f"change ({details}); an id is never reused for another configuration, so "
                f"restore the recorded values and add the new configuration under a new id",
            )
        )
    return problems


def _describe_change(name: str, before: Any, after: Any) -> str:
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        keys = sorted(set(before) | set(after))
        diffs = [f"{k} {before.get(k)!r} -> {after.get(k)!r}" for k in keys
                 if before.get(k) != after.get(k)]
        return f"{name}: {', '.join(diffs)}"
    return f"{name}: {before!r} -> {after!r}"
