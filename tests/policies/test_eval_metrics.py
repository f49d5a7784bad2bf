"""Evaluation metrics against scikit-learn, on imbalanced labels and an empty slice."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sklearn.metrics import precision_recall_fscore_support

from policies.eval_metrics import (
    AVERAGING,
    OutputShapeError,
    ScoredRow,
    compute_metrics,
    decide_labels,
    result_rows,
)
from registry_state.taxonomy import Taxonomy, ThresholdKind

LABELS = ["common", "rare", "never_in_es", "absent"]


def imbalanced_rows() -> list[ScoredRow]:
    """Sixty rows: `common` is positive in about half, `rare` in a few, `never_in_es` never
    in Spanish, and `absent` in no row at all (though the model predicts it sometimes)."""
    generator = random.Random(20260110)
    rows = []
    for index in range(60):
        language = "en" if index < 40 else "es"
        expected = {
            "common": int(generator.random() < 0.5),
            "rare": int(generator.random() < 0.08),
            "never_in_es": int(language == "en" and generator.random() < 0.3),
            "absent": 0,
        }
        predicted = {
            label: value if generator.random() < 0.8 else 1 - value
            for label, value in expected.items()
        }
        rows.append(ScoredRow(language, expected, predicted))
    return rows


def sklearn_matrix(rows: list[ScoredRow]) -> tuple[list[list[int]], list[list[int]]]:
    truth = [[row.expected[label] for label in LABELS] for row in rows]
    predicted = [[row.predicted[label] for label in LABELS] for row in rows]
    return truth, predicted


def label_indices(rows: list[ScoredRow], *, with_positives: bool) -> list[int]:
    return [i for i, label in enumerate(LABELS)
            if not with_positives or any(row.expected[label] for row in rows)]


@pytest.mark.parametrize("language", ["all", "en", "es"])
def test_metrics_equal_sklearn(language: str) -> None:
    rows = imbalanced_rows()
    metrics = compute_metrics(rows, labels=LABELS)
    slice_rows = [row for row in rows if language in ("all", row.language)]
    entry = metrics["slices"][language]
    truth, predicted = sklearn_matrix(slice_rows)

    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=list(range(len(LABELS))), average=None, zero_division=0)
    for index, label in enumerate(LABELS):
        values = entry["labels"][label]
        assert values["support"] == support[index]
        if support[index] == 0:
            assert values["precision"] is None
            assert values["recall"] is None
            assert values["f1"] is None
            continue
        assert values["precision"] == pytest.approx(precision[index])
        assert values["recall"] == pytest.approx(recall[index])
        assert values["f1"] == pytest.approx(f1[index])

    scored = label_indices(slice_rows, with_positives=True)
    macro = precision_recall_fscore_support(
        truth, predicted, labels=scored, average="macro", zero_division=0)
    assert entry["macro"]["precision"] == pytest.approx(macro[0])
    assert entry["macro"]["recall"] == pytest.approx(macro[1])
    assert entry["macro"]["f1"] == pytest.approx(macro[2])
    assert entry["macro"]["labels"] == len(scored)

    micro = precision_recall_fscore_support(
        truth, predicted, labels=list(range(len(LABELS))), average="micro", zero_division=0)
    assert entry["micro"]["precision"] == pytest.approx(micro[0])
    assert entry["micro"]["recall"] == pytest.approx(micro[1])
    assert entry["micro"]["f1"] == pytest.approx(micro[2])


def test_label_without_positives_is_null_and_skipped() -> None:
    rows = imbalanced_rows()
    spanish = compute_metrics(rows, labels=LABELS)["slices"]["es"]
    assert spanish["labels"]["never_in_es"] == {
        "precision": None, "recall": None, "f1": None, "support": 0,
        "tp": 0, "fp": spanish["labels"]["never_in_es"]["fp"], "fn": 0,
    }
    assert spanish["macro"]["labels"] == 2


def test_slice_without_any_positive() -> None:
    rows = [ScoredRow("fr", {"common": 0, "rare": 0}, {"common": 0, "rare": 0})]
    entry = compute_metrics(rows, labels=["common", "rare"])["slices"]["fr"]
    assert entry["macro"] == {"precision": None, "recall": None, "f1": None, "labels": 0}
    assert entry["micro"] == {"precision": None, "recall": None, "f1": None, "support": 0}


def test_no_rows_gives_empty_slice() -> None:
    metrics = compute_metrics([], labels=["common"])
    assert metrics["slices"] == {
        "all": {"rows": 0,
                "labels": {"common": {"precision": None, "recall": None, "f1": None,
                                      "support": 0, "tp": 0, "fp": 0, "fn": 0}},
                "macro": {"precision": None, "recall": None, "f1": None, "labels": 0},
                "micro": {"precision": None, "recall": None, "f1": None, "support": 0}},
    }


def test_averaging_is_named() -> None:
    metrics = compute_metrics(imbalanced_rows(), labels=LABELS)
    assert metrics["averaging"] == AVERAGING
    assert set(metrics["averaging"]) == {"macro", "micro"}


def test_result_rows_flatten_every_slice() -> None:
    rows = result_rows(compute_metrics(imbalanced_rows(), labels=LABELS))
    keys = {(row["language"], row["label"]) for row in rows}
    assert len(keys) == len(rows) == 3 * (len(LABELS) + 2)
    assert ("es", "macro") in keys


TAXONOMY = Taxonomy(thresholds=(("confidence_increase", ThresholdKind.PROBABILITY),
                                ("risk_min_cues", ThresholdKind.COUNT)))


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        pytest.param({"confidence_increase": 0.8, "risk_min_cues": ["a", "b"]},
                     {"confidence_increase": 1, "risk_min_cues": 1}, id="at-threshold"),
        pytest.param({"confidence_increase": 0.79, "risk_min_cues": ["a"]},
                     {"confidence_increase": 0, "risk_min_cues": 0}, id="below"),
        pytest.param({"confidence_increase": 1, "risk_min_cues": []},
                     {"confidence_increase": 1, "risk_min_cues": 0}, id="integer-confidence"),
    ],
)
def test_decide_labels(output: dict[str, Any], expected: dict[str, int]) -> None:
    thresholds = {"confidence_increase": 0.8, "risk_min_cues": 2}
    assert decide_labels(output, thresholds=thresholds, taxonomy=TAXONOMY) == expected


def test_decide_labels_rejects_missing_value() -> None:
    with pytest.raises(OutputShapeError, match="risk_min_cues: expected a list of signals"):
        decide_labels({"confidence_increase": 0.5},
                      thresholds={"confidence_increase": 0.8, "risk_min_cues": 1},
                      taxonomy=TAXONOMY)
