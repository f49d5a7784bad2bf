"""The model spec: one classifier configuration as written in YAML.

`spec_model_for(taxonomy)` returns a strict pydantic model whose `thresholds`
field has exactly the taxonomy's labels. Values arrive from `yaml_source` as
plain data; validation normalises them (numbers to float or int, timestamps to
aware UTC datetimes) so that two spellings of one value compare equal and a
second reconcile pass over the same revision plans nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    create_model,
)

from registry_state.taxonomy import DEFAULT_TAXONOMY, Taxonomy, ThresholdKind

Provider = Literal["claude", "openai", "gemini"]
PROVIDERS: tuple[str, ...] = ("claude", "openai", "gemini")

ID_PATTERN = r"^[a-z0-9][a-z0-9.-]*$"
PROMPT_VERSION_PATTERN = r"^v[0-9]+\.[0-9]+(\.[0-9]+)?$"

IDENTITY_FIELDS = ("provider", "model", "prompt_version", "thresholds")
"""Fields that make a model's identity: changing any of them needs a new id."""


def parse_effective_from(value: Any) -> dt.datetime:
    """Turn an ISO 8601 date or datetime with a UTC offset into an aware UTC datetime.

    A date means midnight UTC. A datetime without an offset is rejected because
    the reconciler's clock and the author's may be in different zones.
    """
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    elif isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            try:
                day = dt.date.fromisoformat(text)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a date; write YYYY-MM-DD or an ISO 8601 datetime "
                    "with an offset, such as 2025-12-01T00:00:00Z"
                ) from None
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO 8601 datetime; write it like 2025-12-01T00:00:00Z"
            ) from None
    else:
        raise ValueError(
            f"expected an ISO 8601 date or datetime string, got {type(value).__name__} "
            f"{value!r}; write it like \"2025-12-01T00:00:00Z\""
        )
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(
            f"{value!r} has no UTC offset, so the instant is ambiguous; "
            f"append 'Z' for UTC, as in {parsed.isoformat()}Z"
        )
    return parsed.astimezone(dt.UTC)


EffectiveFrom = Annotated[dt.datetime, BeforeValidator(parse_effective_from)]


def _probability_field() -> Any:
    return (Annotated[StrictFloat | StrictInt, Field(ge=0, le=1)], ...)


def _count_field() -> Any:
    return (Annotated[StrictInt, Field(ge=0)], ...)


class SpecBase(BaseModel):
    """Fields shared by every taxonomy; `spec_model_for` adds `thresholds`."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=100, pattern=ID_PATTERN)]
    provider: Provider
    model: Annotated[str, Field(min_length=1, max_length=100)]
    prompt_version: Annotated[str, Field(max_length=20, pattern=PROMPT_VERSION_PATTERN)]
    thresholds: Any
    threshold_kinds: ClassVar[dict[str, ThresholdKind]] = {}
    effective_from: EffectiveFrom
    active: StrictBool
    description: Annotated[str, Field(max_length=2000)] | None = None

    # Derived values, computed once per object: the reconciler keeps spec objects
    # across passes (keyed by blob sha), so an unchanged spec is hashed only once.
    _derived: dict[str, Any] = PrivateAttr(default_factory=dict)

    def threshold_values(self) -> dict[str, float | int]:
        """Return thresholds as a plain dict: probabilities as float, counts as int."""
        if "thresholds" not in self._derived:
            values: dict[str, float | int] = {}
            for name, value in self.thresholds.model_dump().items():
                is_probability = self.threshold_kinds.get(name) is ThresholdKind.PROBABILITY
                values[name] = float(value) if is_probability else value
            self._derived["thresholds"] = values
        return dict(self._derived["thresholds"])

    def identity(self) -> dict[str, Any]:
        """Return the identity fields in normalised form."""
        return {
            "provider": self.provider,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "thresholds": dict(sorted(self.threshold_values().items())),
        }

    def config_hash(self) -> str:
        """Return a SHA-256 of the identity fields; equal values give equal hashes."""
        if "config_hash" not in self._derived:
            self._derived["config_hash"] = identity_hash(self.identity())
        return str(self._derived["config_hash"])


def identity_hash(identity: dict[str, Any]) -> str:
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@functools.cache
def spec_model_for(taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> type[SpecBase]:
    """Build (once per taxonomy) the spec model whose thresholds follow `taxonomy`."""
    threshold_fields = {
        name: _probability_field() if kind is ThresholdKind.PROBABILITY else _count_field()
        for name, kind in taxonomy.thresholds
    }
    thresholds_model = create_model(
        "Thresholds",
        __config__=ConfigDict(strict=True, extra="forbid", frozen=True),
        **threshold_fields,
    )
    kinds = {name: kind for name, kind in taxonomy.thresholds}
    model: type[SpecBase] = create_model(
        "ModelSpec",
        __base__=SpecBase,
        thresholds=(thresholds_model, ...),
    )
    model.threshold_kinds = kinds
    return model


ModelSpec = spec_model_for(DEFAULT_TAXONOMY)
