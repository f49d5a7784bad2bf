"""The label taxonomy: which thresholds a spec must set, and of which kind.

A probability threshold is a confidence in [0, 1] above which a label is
assigned; a count threshold is the minimum number of signals or cues (an
integer of at least 0). The default is the governance guide's eight labels; a
models repository may declare its own under `taxonomy:` in `registry.yaml`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ThresholdKind(enum.StrEnum):
    PROBABILITY = "probability"
    COUNT = "count"


@dataclass(frozen=True)
class Taxonomy:
    """Threshold names in a fixed order, each with its kind."""

    thresholds: tuple[tuple[str, ThresholdKind], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.thresholds)

    def kind_of(self, name: str) -> ThresholdKind | None:
        return dict(self.thresholds).get(name)


DEFAULT_TAXONOMY = Taxonomy(
    thresholds=(
        ("confidence_increase", ThresholdKind.PROBABILITY),
        ("confidence_decrease", ThresholdKind.PROBABILITY),
        ("belonging_increase", ThresholdKind.PROBABILITY),
        ("belonging_decrease", ThresholdKind.PROBABILITY),
        ("language_comfort_high", ThresholdKind.PROBABILITY),
        ("language_comfort_low", ThresholdKind.PROBABILITY),
        ("employability_min_signals", ThresholdKind.COUNT),
        ("risk_min_cues", ThresholdKind.COUNT),
    )
)
