"""Checks of a reconcile pass that compare the commit's specs with the observed rows.

`recorded_identities` selects the rows whose identity the cross-spec rules
must compare; `unmanaged_conflicts` names the specs that collide with rows
q2q-registry did not create. The reconcile pass calls both inside its
transaction; they do no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from policies.activation import in_effect
from policies.spec_rules import RecordedIdentity
from reconciler.desired import DesiredState
from registry_state.changes import ModelRecord
from registry_state.errors import Problem


def recorded_identities(
    observed: list[ModelRecord], desired: DesiredState
) -> Mapping[str, RecordedIdentity]:
    """Return the recorded identities that the identity check must compare.

    A row whose stored configuration hash equals its spec's hash has the same
    identity, so only rows with another hash (or none) are compared field by field.
    NOTE: an identity column edited by hand in the database, with the hash left
    as it was, is therefore neither reported nor reverted.
    """
    desired_hashes = {loaded.spec.id: loaded.spec.config_hash() for loaded in desired.specs}
    return {
        record.model_id: RecordedIdentity(record.model_id, record.identity(), record.retired)
        for record in observed
        if record.model_id in desired_hashes
        and record.config_hash != desired_hashes[record.model_id]
    }


def unmanaged_conflicts(
    desired: DesiredState, observed: list[ModelRecord], now: dt.datetime
) -> list[Problem]:
    """Name the specs that collide with rows q2q-registry did not create.

    Such rows are never changed, so a spec cannot take their id, and a spec
    cannot come into effect for a provider whose active model is such a row.
    """
    unmanaged = {record.model_id for record in observed if not record.managed}
    problems = [
        Problem(
            loaded.path,
            loaded.line,
            field="id",
            message=f"model id '{loaded.spec.id}' already exists in the database but was not "
            "created by q2q-registry; pick another id, or remove the row after checking "
            "that nothing uses it",
        )
        for loaded in desired.specs
        if loaded.spec.id in unmanaged
    ]
    unmanaged_active = {
        record.provider: record.model_id
        for record in observed
        if not record.managed and record.active and not record.retired
    }
    in_effect_now = in_effect((loaded.spec for loaded in desired.specs), now)
    for loaded in desired.specs:
        blocking = unmanaged_active.get(loaded.spec.provider)
        if blocking is None or in_effect_now.get(loaded.spec.provider) is not loaded.spec:
            continue
        problems.append(Problem(
            loaded.path,
            loaded.line,
            field="active",
            message=f"'{loaded.spec.id}' would be the active {loaded.spec.provider} model, "
            f"but the database row '{blocking}', which q2q-registry did not create, is "
            f"active for {loaded.spec.provider}; set 'active: false' here, or deactivate "
            f"'{blocking}' in the database after checking that nothing uses it",
        ))
    return problems
