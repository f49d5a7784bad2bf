"""A models repository and CSV dataset for evaluation tests, on the default taxonomy.

Rows carry `#label` markers that the fake provider's keyword classifier reads,
so the expected metrics follow from the CSV alone.
"""

from __future__ import annotations

from pathlib import Path

from registry_state.taxonomy import DEFAULT_TAXONOMY, ThresholdKind
from support.git_repo import spec_yaml

LABELS = list(DEFAULT_TAXONOMY.names)
PROBABILITY_LABELS = [n for n, k in DEFAULT_TAXONOMY.thresholds if k is ThresholdKind.PROBABILITY]
COUNT_LABELS = [n for n, k in DEFAULT_TAXONOMY.thresholds if k is ThresholdKind.COUNT]

PROMPT = """Classify the learner feedback below.
Language: {{ language }}
Labels:
{{ labels }}
Answer with JSON only, like {"confidence_increase": 0.5}.
TEXT: {{ text }}
"""


def csv_row(text: str, language: str, positives: set[str]) -> str:
    cells = [f'"{text}"', language, *("1" if name in positives else "0" for name in LABELS)]
    return ",".join(cells)


def dataset_csv(rows: list[tuple[str, str, set[str]]]) -> str:
    header = ",".join(["text", "language", *LABELS])
    return "\n".join([header, *(csv_row(*row) for row in rows)]) + "\n"


# Ten rows in two languages. The markers make the fake's decisions; the label
# columns are the truth, so a marker without its column is a false positive.
ROWS: list[tuple[str, str, set[str]]] = [
    ("I feel sure now #confidence_increase", "en", {"confidence_increase"}),
    ("Much more confident #confidence_increase", "en", {"confidence_increase"}),
    ("I got lost in class", "en", {"confidence_decrease"}),
    ("Team welcomed me #belonging_increase", "en", {"belonging_increase"}),
    ("Nobody talks to me #risk_min_cues", "en", {"risk_min_cues", "belonging_decrease"}),
    ("Me siento seguro #confidence_increase", "es", {"confidence_increase"}),
    ("Hablo mejor #language_comfort_high", "es", {"language_comfort_high"}),
    ("Consegui entrevista #employability_min_signals", "es", {"employability_min_signals"}),
    ("Todo bien #confidence_increase", "es", set()),
    ("Estoy solo", "es", {"risk_min_cues"}),
]


def write_models_repo(root: Path, *, provider: str = "claude", model: str = "claude-test",
                      model_id: str = "q2q-claude-v3", active: bool = False) -> None:
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "prompts").mkdir(parents=True, exist_ok=True)
    (root / "models" / f"{model_id}.yaml").write_text(
        spec_yaml(model_id, provider=provider, model=model, prompt_version="v3.0",
                  active=active))
    (root / "prompts" / "v3.0.txt").write_text(PROMPT)
