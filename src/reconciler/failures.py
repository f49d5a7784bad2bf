"""How the daemon treats a failed pass: which failures stall, and how long to back off.

A terminal failure (invalid specs, the mass-retire guard) will fail again on
the same revision, so the daemon stalls on it; anything else is transient and
retried with capped exponential backoff and jitter. The daemon calls these.
"""

from __future__ import annotations

import random

import sqlalchemy as sa

from registry_state.errors import (
    GitSourceError,
    InvalidSpecsError,
    MassRetireRefusedError,
    StoreUnavailableError,
)


def terminal_reason(cause: BaseException) -> str | None:
    """Return the stall reason for a failure that retrying cannot fix, else None."""
    if isinstance(cause, InvalidSpecsError):
        return "InvalidSpecs"
    if isinstance(cause, MassRetireRefusedError):
        return "MassRetireRefused"
    return None


def transient_reason(cause: BaseException) -> str:
    """Return the condition reason for a failure worth retrying."""
    if isinstance(cause, GitSourceError):
        return "GitUnavailable"
    if is_database_unreachable(cause):
        return "DatabaseUnavailable"
    return "UnexpectedError"


def is_database_unreachable(error: BaseException) -> bool:
    """Return True for errors that mean the database is unreachable, not that it refused."""
    return isinstance(
        error, sa.exc.OperationalError | sa.exc.InterfaceError | StoreUnavailableError
    )


def backoff_delay(attempt: int, *, initial: float, maximum: float) -> float:
    """Return the delay before retry `attempt` (1-based): capped doubling with jitter
    in the upper half, so replicas that failed together do not retry together."""
    ceiling = min(maximum, initial * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)
