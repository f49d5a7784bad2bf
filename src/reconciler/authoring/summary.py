"""Summaries of what a change to the specs does, for pull requests and commit messages.

Pure functions over records. `compare_specs` plans the change from one set of
specs (a base revision) to another (the working tree or a pull request) with
the reconciler's own planner, so the summary names the same creates,
activations and retirements that `q2q apply` would make. `cutovers` lists, per
provider, which model replaces which, now or at a scheduled instant, and how
the model, prompt and thresholds differ. `q2q validate --base`,
`q2q plan --format markdown` and `q2q rollback` call them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.planner import compute_plan, desired_records
from registry_state.changes import ChangeKind, ModelRecord, Plan
from registry_state.loading import LoadedSpec

CHANGE_SYMBOLS = {
    ChangeKind.CREATE: "+",
    ChangeKind.RESTORE: "+",
    ChangeKind.UPDATE: "~",
    ChangeKind.ACTIVATE: ">",
    ChangeKind.DEACTIVATE: "<",
    ChangeKind.RETIRE: "-",
}


@dataclass(frozen=True)
class FieldDifference:
    """One identity field that differs between the outgoing and the incoming model."""

    name: str
    before: Any
    after: Any

    def describe(self) -> str:
        return f"{self.name} {self.before} -> {self.after}"


@dataclass(frozen=True)
class Cutover:
    """A provider's model in effect changing, now (`at` is None) or at a scheduled instant."""

    provider: str
    before_id: str | None
    after_id: str | None
    at: dt.datetime | None
    differences: tuple[FieldDifference, ...] = ()

    def describe(self) -> str:
        when = "now" if self.at is None else f"at {self.at.isoformat().replace('+00:00', 'Z')}"
        text = f"{self.provider}: {self.before_id or 'no model'} -> {self.after_id or 'no model'}"
        text += f" {when}"
        if self.differences:
            text += " (" + ", ".join(d.describe() for d in self.differences) + ")"
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "from": self.before_id,
            "to": self.after_id,
            "at": self.at.isoformat() if self.at else None,
            "differences": [dataclasses.asdict(d) for d in self.differences],
        }


def retired_records(specs: Iterable[LoadedSpec]) -> list[ModelRecord]:
    """Return records for specs that were removed earlier, so a return plans a restore."""
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return [
        dataclasses.replace(record, active=False, retired=True)
        for record in desired_records(list(specs), epoch)
    ]


def compare_specs(
    base: Sequence[LoadedSpec],
    head: Sequence[LoadedSpec],
    *,
    now: dt.datetime,
    retired: Sequence[LoadedSpec] = (),
) -> tuple[Plan, list[Cutover]]:
    """Plan the change from `base` to `head` specs, as if `base` had been applied at `now`."""
    observed = desired_records(base, now) + retired_records(retired)
    desired = desired_records(head, now)
    return compute_plan(desired, observed), cutovers(desired, observed, now=now)


def cutovers(
    desired: Sequence[ModelRecord], observed: Sequence[ModelRecord], *, now: dt.datetime
) -> list[Cutover]:
    """Return each provider's change of model in effect, now and at scheduled instants.

    A scheduled cutover is listed only when it is new: a spec with a future
    `effective_from` whose observed record does not already declare it active
    at that instant.
    """
    observed_by_id = {record.model_id: record for record in observed}
    observed_active = {
        record.provider: record for record in observed
        if record.active and record.managed and not record.retired
    }
    desired_active = {record.provider: record for record in desired if record.active}
    found = []
    for provider in sorted(observed_active.keys() | desired_active.keys()):
        before, after = observed_active.get(provider), desired_active.get(provider)
        before_id = before.model_id if before else None
        after_id = after.model_id if after else None
        if before_id != after_id:
            found.append(_cutover(provider, before=before, after=after, at=None))

    scheduled = sorted(
        (r for r in desired if r.declared_active and r.effective_from > now),
        key=lambda record: (record.provider, record.effective_from, record.model_id),
    )
    predecessor = dict(desired_active)
    for record in scheduled:
        previous = predecessor.get(record.provider)
        predecessor[record.provider] = record
        known = observed_by_id.get(record.model_id)
        if known and known.declared_active and known.effective_from == record.effective_from:
            continue
        found.append(_cutover(record.provider, before=previous, after=record,
                              at=record.effective_from))
    return found


def _cutover(
    provider: str, *, before: ModelRecord | None, after: ModelRecord | None,
    at: dt.datetime | None,
) -> Cutover:
    return Cutover(
        provider=provider,
        before_id=before.model_id if before else None,
        after_id=after.model_id if after else None,
        at=at,
        differences=tuple(identity_differences(before, after)) if before and after else (),
    )


def identity_differences(before: ModelRecord, after: ModelRecord) -> list[FieldDifference]:
    """Return the model, prompt version and thresholds that differ between two models."""
    differences = []
    if before.model_name != after.model_name:
        differences.append(FieldDifference("model", before.model_name, after.model_name))
    if before.prompt_version != after.prompt_version:
        differences.append(
            FieldDifference("prompt_version", before.prompt_version, after.prompt_version)
        )
    for name in sorted(before.thresholds.keys() | after.thresholds.keys()):
        old, new = before.thresholds.get(name), after.thresholds.get(name)
        if old != new:
            differences.append(FieldDifference(f"thresholds.{name}", old, new))
    return differences


def change_lines(plan: Plan) -> list[str]:
    """Return one `symbol kind model-id ...` line per change, as `q2q plan` prints them."""
    return [f"{CHANGE_SYMBOLS[change.kind]} {change.describe()}" for change in plan.changes]
