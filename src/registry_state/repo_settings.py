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

import re
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    ValidationError,
)

from registry_state import yaml_source
from registry_state.errors import InvalidSpecsError, Problem
from registry_state.taxonomy import DEFAULT_TAXONOMY, Taxonomy, ThresholdKind
from registry_state.validation_messages import problems_from_error

SETTINGS_FILE = "registry.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def _check_label(name: str) -> str:
    if not LABEL_PATTERN.match(name) or name.startswith("model_"):
        raise ValueError(
            f"invalid threshold name {name!r}; use lowercase letters, digits and underscores, "
            "starting with a letter (at most 63 characters, not starting with 'model_')"
        )
    return name


LABEL_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
Label = Annotated[str, AfterValidator(_check_label)]


class TaxonomySettings(_Strict):
    thresholds: Annotated[
        dict[Label, Annotated[ThresholdKind, Strict(False)]], Field(min_length=1)
    ]


class ReconcilerSettings(_Strict):
    allow_mass_retire: StrictBool = False
    max_retire_share: Annotated[float | int, Field(ge=0, le=1)] = 0.5


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
        return RepositorySettings.model_validate(data)
    except ValidationError as error:
        raise InvalidSpecsError(
            problems_from_error(error, model=RepositorySettings, path=path, content=content)
        ) from None
