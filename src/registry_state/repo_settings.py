"""Settings a models repository declares in its optional `registry.yaml`.

`registry.yaml` sits beside the spec directory (for `models/`, at the
repository root) and may set the label taxonomy and the reconciler's
mass-retire guard:

    taxonomy:
      thresholds:
        confidence_increase: probability
        risk_min_cues: count
    reconciler:
      allow_mass_retire: false
      max_retire_share: 0.5
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from registry_state import yaml_source
from registry_state.errors import InvalidSpecsError, Problem
from registry_state.taxonomy import DEFAULT_TAXONOMY, Taxonomy, ThresholdKind
from registry_state.validation_messages import problems_from_error

SETTINGS_FILE = "registry.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class TaxonomySettings(_Strict):
    thresholds: Annotated[dict[str, ThresholdKind], Field(min_length=1)]


class ReconcilerSettings(_Strict):
    allow_mass_retire: StrictBool = False
    max_retire_share: Annotated[float, Field(ge=0, le=1)] = 0.5


class RepositorySettings(_Strict):
    taxonomy: TaxonomySettings | None = None
    reconciler: ReconcilerSettings = ReconcilerSettings()

    def label_taxonomy(self) -> Taxonomy:
        if self.taxonomy is None:
            return DEFAULT_TAXONOMY
        return Taxonomy(thresholds=tuple(self.taxonomy.thresholds.items()))


def settings_path(spec_dir: str) -> str:
    """Return the repository-relative path of registry.yaml for a spec directory."""
    parent = spec_dir.strip("/").rpartition("/")[0]
    return f"{parent}/{SETTINGS_FILE}" if parent else SETTINGS_FILE


def parse_settings(content: bytes | None, *, path: str) -> RepositorySettings:
    """Validate registry.yaml; a missing file gives the defaults."""
    if content is None:
        return RepositorySettings()
    try:
        data = yaml_source.load(content)
    except yaml_source.YamlSourceError as error:
        problem = Problem(path, error.line, error.column, message=error.message)
        raise InvalidSpecsError([problem]) from None
    if data is None:
        return RepositorySettings()
    try:
        return RepositorySettings.model_validate(data, strict=False)
    except ValidationError as error:
        raise InvalidSpecsError(
            problems_from_error(error, model=RepositorySettings, path=path, content=content)
        ) from None
