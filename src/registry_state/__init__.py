"""The data of q2q-registry: spec models, YAML loading, tables, migrations and the store."""

from registry_state.errors import (
    GitSourceError,
    InvalidSpecsError,
    MassRetireRefusedError,
    ModelNotFoundError,
    Problem,
    Q2QError,
    SchemaOutdatedError,
    Severity,
    StoreUnavailableError,
)

__all__ = [
    "GitSourceError",
    "InvalidSpecsError",
    "MassRetireRefusedError",
    "ModelNotFoundError",
    "Problem",
    "Q2QError",
    "SchemaOutdatedError",
    "Severity",
    "StoreUnavailableError",
]
