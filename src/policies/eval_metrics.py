"""Evaluation metrics: turn provider outputs into decisions, then score them per slice.

`decide_labels` applies a spec's thresholds to one structured provider output:
a probability label is assigned when its confidence is at or above the
threshold, a count label when the number of signals or cues is at or above
the minimum. `compute_metrics` takes the scored rows and returns precision,
recall, F1 and support per label for every language and for all rows
together (the slice `all`), plus two averages, each named in the output:

- `macro`: the unweighted mean of the per-label values over the labels that
  have at least one positive in the slice. A label with no positives has
  null metrics and is left out.
- `micro`: precision, recall and F1 of the true positives, false positives
  and false negatives pooled over all labels of the slice.

A precision or recall whose denominator is zero is 0.0, as scikit-learn's
`zero_division=0` gives. The harness and the gates call this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from registry_state.taxonomy import Taxonomy, ThresholdKind

ALL_LANGUAGES = "all"
AVERAGING = {
    "macro": "unweighted mean over the labels with at least one positive in the slice",
    "micro": "pooled true positives, false positives and false negatives over all labels",
}


class OutputShapeError(ValueError):
    """A provider output lacks a label or has a value of the wrong type."""


def decide_labels(
    output: Mapping[str, Any], *, thresholds: Mapping[str, float | int], taxonomy: Taxonomy
) -> dict[str, int]:
    """Return a 0/1 decision per label from one structured output."""
    decisions: dict[str, int] = {}
    for name, kind in taxonomy.thresholds:
        value = output.get(name)
        threshold = thresholds[name]
        if kind is ThresholdKind.PROBABILITY:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise OutputShapeError(f"{name}: expected a confidence number, got {value!r}")
            decisions[name] = int(value >= threshold)
        else:
            if not isinstance(value, list):
                raise OutputShapeError(f"{name}: expected a list of signals, got {value!r}")
            decisions[name] = int(len(value) >= threshold)
    return decisions


@dataclass(frozen=True)
class ScoredRow:
    """The expected labels of one example and the model's decisions for it."""

    language: str
    expected: Mapping[str, int]
    predicted: Mapping[str, int]


@dataclass(frozen=True)
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, expected: int, predicted: int) -> Counts:
        return Counts(
            tp=self.tp + (expected and predicted),
            fp=self.fp + (predicted and not expected),
            fn=self.fn + (expected and not predicted),
        )

    @property
    def support(self) -> int:
        return self.tp + self.fn


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def label_metrics(counts: Counts) -> dict[str, Any]:
    """Return precision, recall, F1 (null without positives), support and the counts."""
    values: dict[str, Any] = {"precision": None, "recall": None, "f1": None,
                              "support": counts.support,
                              "tp": counts.tp, "fp": counts.fp, "fn": counts.fn}
    if counts.support:
        precision = _ratio(counts.tp, counts.tp + counts.fp)
        recall = _ratio(counts.tp, counts.support)
        values |= {"precision": precision, "recall": recall, "f1": _f1(precision, recall)}
    return values


def _macro(per_label: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    scored = [values for values in per_label.values() if values["support"]]
    if not scored:
        return {"precision": None, "recall": None, "f1": None, "labels": 0}
    return {
        key: sum(values[key] for values in scored) / len(scored)
        for key in ("precision", "recall", "f1")
    } | {"labels": len(scored)}


def _micro(counts: Iterable[Counts]) -> dict[str, Any]:
    pooled = Counts()
    for item in counts:
        pooled = Counts(pooled.tp + item.tp, pooled.fp + item.fp, pooled.fn + item.fn)
    precision = _ratio(pooled.tp, pooled.tp + pooled.fp)
    recall = _ratio(pooled.tp, pooled.support)
    if pooled.tp + pooled.fp + pooled.fn == 0:
        return {"precision": None, "recall": None, "f1": None, "support": 0}
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall),
            "support": pooled.support}


def _slice(rows: Sequence[ScoredRow], labels: Sequence[str]) -> dict[str, Any]:
    counts = {label: Counts() for label in labels}
    for row in rows:
        for label in labels:
            counts[label] = counts[label].add(row.expected[label], row.predicted[label])
    per_label = {label: label_metrics(counts[label]) for label in labels}
    return {
        "rows": len(rows),
        "labels": per_label,
        "macro": _macro(per_label),
        "micro": _micro(counts.values()),
    }


def compute_metrics(rows: Sequence[ScoredRow], *, labels: Sequence[str]) -> dict[str, Any]:
    """Return the metrics document: the averaging definitions and one entry per slice."""
    by_language: dict[str, list[ScoredRow]] = {}
    for row in rows:
        by_language.setdefault(row.language, []).append(row)
    slices = {ALL_LANGUAGES: _slice(rows, labels)}
    for language in sorted(by_language):
        slices[language] = _slice(by_language[language], labels)
    return {"averaging": dict(AVERAGING), "labels": list(labels), "slices": slices}


def result_rows(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flatten a metrics document into one row per (language, label or average)."""
    rows = []
    for language, entry in metrics["slices"].items():
        for label, values in entry["labels"].items():
            rows.append({"language": language, "label": label,
                         "precision": values["precision"], "recall": values["recall"],
                         "f1": values["f1"], "support": values["support"]})
        for average in ("macro", "micro"):
            values = entry[average]
            support = values.get("support", values.get("labels", 0))
            rows.append({"language": language, "label": average,
                         "precision": values["precision"], "recall": values["recall"],
                         "f1": values["f1"], "support": support})
    return rows
