"""Compute the plan that turns observed state into desired state.

Pure functions: `desired_records` turns the valid specs of a commit into
`ModelRecord`s with `active` meaning "in effect at `now`"; `compute_plan`
compares them with the observed records; `check_retire_guard` applies the
mass-retire guard. The reconcile pass calls them inside its transaction, and
`q2q plan` prints the result without applying it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence

from policies.activation import in_effect
from registry_state.changes import (
    APPLY_ORDER,
    MUTABLE_FIELDS,
    Change,
    ChangeKind,
    ModelRecord,
    Plan,
)
from registry_state.errors import MassRetireRefusedError
from registry_state.loading import LoadedSpec


def desired_records(specs: Sequence[LoadedSpec], now: dt.datetime) -> list[ModelRecord]:
    """Build one record per spec; `active` is True for the spec in effect at `now`."""
    current = {spec.id for spec in in_effect((loaded.spec for loaded in specs), now).values()}
    return [
        dataclasses.replace(loaded.record, active=True) if loaded.spec.id in current
        else loaded.record
        for loaded in specs
    ]


def compute_plan(
    desired: Iterable[ModelRecord], observed: Iterable[ModelRecord]
) -> Plan:
    """Return the changes, in apply order, that make `observed` equal `desired`.

    Identity fields are not compared here: validation has already rejected a
    spec whose identity differs from its recorded model.
    """
    desired_by_id = {record.model_id: record for record in desired}
    observed_by_id = {record.model_id: record for record in observed if record.managed}
    changes: list[Change] = []

    for model_id in sorted(desired_by_id.keys() | observed_by_id.keys()):
        desired_record = desired_by_id.get(model_id)
        observed_record = observed_by_id.get(model_id)
        if observed_record is None:
            assert desired_record is not None
            changes += _create(desired_record)
        elif desired_record is None:
            changes += _retire(observed_record)
        else:
            changes += _converge(desired_record, observed_record)

    order = {kind: index for index, kind in enumerate(APPLY_ORDER)}
    changes.sort(key=lambda change: (order[change.kind], change.model_id))
    return Plan(tuple(changes))


def _create(desired: ModelRecord) -> list[Change]:
    after = desired.as_json()
    after["active"] = False
    changes = [Change(ChangeKind.CREATE, desired.model_id, desired.provider, None, after)]
    if desired.active:
        changes.append(_activation(desired, reason=""))
    return changes


def _retire(observed: ModelRecord) -> list[Change]:
    if observed.retired:
        return []
    return [
        Change(
            ChangeKind.RETIRE,
            observed.model_id,
            observed.provider,
            before={"retired": False, "active": observed.active},
            after={"retired": True, "active": False},
            reason="spec removed from git",
        )
    ]


def _converge(desired: ModelRecord, observed: ModelRecord) -> list[Change]:
    changes = []
    if observed.retired:
        changes.append(
            Change(
                ChangeKind.RESTORE,
                desired.model_id,
                desired.provider,
                before={"retired": True},
                after={"retired": False},
                reason="spec restored in git",
            )
        )

    changed = [name for name in MUTABLE_FIELDS if getattr(desired, name) != getattr(observed, name)]
    if changed:
        changes.append(
            Change(
                ChangeKind.UPDATE,
                desired.model_id,
                desired.provider,
                before={name: getattr(observed, name) for name in changed},
                after={name: getattr(desired, name) for name in changed},
            )
        )

    if observed.active and not desired.active:
        reason = "spec set to inactive" if not desired.declared_active else \
            "superseded by a later active model"
        changes.append(
            Change(
                ChangeKind.DEACTIVATE,
                desired.model_id,
                desired.provider,
                before={"active": True},
                after={"active": False},
                reason=reason,
            )
        )
    if desired.active and not observed.active:
        scheduled = observed.declared_active and observed.effective_from == desired.effective_from
        reason = f"effective_from {desired.effective_from.isoformat()} reached" if scheduled else ""
        changes.append(_activation(desired, reason=reason))
    return changes


def _activation(desired: ModelRecord, *, reason: str) -> Change:
    return Change(
        ChangeKind.ACTIVATE,
        desired.model_id,
        desired.provider,
        before={"active": False},
        after={"active": True},
        reason=reason,
    )


def check_retire_guard(
    plan: Plan,
    observed: Iterable[ModelRecord],
    *,
    max_share: float,
    allowed: bool,
) -> None:
    """Raise `MassRetireRefusedError` when the plan retires too many models.

    A plan that retires every live model, or more than `max_share` of them, is
    refused unless `allowed` is set.
    """
    retiring = len(plan.of_kind(ChangeKind.RETIRE))
    if retiring == 0 or allowed:
        return
    live = sum(1 for record in observed if record.managed and not record.retired)
    share = retiring / live if live else 1.0
    if retiring < live and share <= max_share:
        return
    what = "every model" if retiring >= live else f"more than {max_share:.0%} of the models"
    raise MassRetireRefusedError(
        f"the commit would retire {retiring} of {live} models ({share:.0%}), which is {what}; "
        "nothing was applied. If this is intended, rerun with --allow-mass-retire or set "
        "'reconciler: {allow_mass_retire: true}' in registry.yaml"
    )


def mark_self_heal(
    plan: Plan,
    specs: Sequence[LoadedSpec],
    *,
    since: dt.datetime | None,
    now: dt.datetime,
) -> Plan:
    """Mark the changes of a pass over the last applied revision as self-heal.

    When the revision has not moved, the only expected changes are scheduled
    cutovers: activations and deactivations of a provider one of whose active
    specs took effect after `since` (the last apply). Every other change
    reverts an edit made to the database outside the reconciler.
    """
    cutover_providers = {
        loaded.spec.provider
        for loaded in specs
        if loaded.spec.active
        and (since is None or loaded.spec.effective_from > since)
        and loaded.spec.effective_from <= now
    }
    changes = []
    for change in plan.changes:
        scheduled = change.kind in (ChangeKind.ACTIVATE, ChangeKind.DEACTIVATE) and \
            change.provider in cutover_providers
        if scheduled:
            changes.append(change)
        else:
            changes.append(dataclasses.replace(
                change, self_heal=True,
                reason=f"{change.kind.value} to revert an out-of-band edit of the database",
            ))
    return Plan(tuple(changes))
