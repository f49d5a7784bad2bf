"""Helpers for the provider adapter tests: a small taxonomy, valid outputs and a fake sleep."""

from __future__ import annotations

import json
from typing import Any

from registry_state.taxonomy import Taxonomy, ThresholdKind

TAXONOMY = Taxonomy(
    thresholds=(
        ("confidence_increase", ThresholdKind.PROBABILITY),
        ("risk_min_cues", ThresholdKind.COUNT),
    )
)

VALID_OUTPUT: dict[str, Any] = {"confidence_increase": 0.92, "risk_min_cues": ["isolation"]}
VALID_TEXT = json.dumps(VALID_OUTPUT)
TRUNCATED_TEXT = VALID_TEXT[: len(VALID_TEXT) // 2]

DUMMY_KEYS = {
    "ANTHROPIC_API_KEY": "test-anthropic-key",
    "OPENAI_API_KEY": "test-openai-key",
    "GEMINI_API_KEY": "test-gemini-key",
}


class RecordingSleep:
    """An injected sleep that records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
