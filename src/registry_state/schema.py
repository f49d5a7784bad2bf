"""The complete database schema: every table module, registered on one `metadata`.

Alembic's environment and the tests that compare migrations with the models
import `metadata` from here, so a table module added later is never missed.
Each table module defines its tables on `registry_state.tables.metadata`.
"""

import registry_state.tables_drift  # defines predictions and drift_checks
import registry_state.tables_eval  # noqa: F401  (defines the evaluation tables)
from registry_state import tables
from registry_state.tables import metadata

__all__ = ["metadata", "tables"]
