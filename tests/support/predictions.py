"""Generate predictions for drift tests and load them with the product's bulk writer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from registry_state.prediction_store import WriteResult, write_predictions
from registry_state.predictions import PredictionRow

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def row(
    *,
    label: str = "confidence_increase",
    language: str = "en",
    positive: bool = True,
    score: float | None = None,
    at: dt.datetime = T0,
    request_id: str = "r1",
    model_id: str = "q2q-claude-v2-multilingual",
    provider: str = "claude",
) -> PredictionRow:
    return PredictionRow(model_id, provider, language, label, score, positive, at, request_id)


def shares_rows(
    positive_share: float,
    count: int,
    *,
    start: dt.datetime,
    span: dt.timedelta,
    label: str = "confidence_increase",
    language: str = "en",
    model_id: str = "q2q-claude-v2-multilingual",
    prefix: str = "r",
) -> list[PredictionRow]:
    """Return `count` rows spread over [start, start + span) with an exact positive share."""
    positives = round(positive_share * count)
    step = span / count
    return [
        row(label=label, language=language, positive=index < positives,
            at=start + step * index, request_id=f"{prefix}-{label}-{language}-{index}",
            model_id=model_id)
        for index in range(count)
    ]


def load(engine: sa.Engine, rows: Sequence[PredictionRow]) -> WriteResult:
    with engine.begin() as connection:
        return write_predictions(connection, [list(rows)])


@dataclass(frozen=True)
class RawPredictions:
    """Columns of generated predictions, kept to compute the expected counts with numpy."""

    label: npt.NDArray[np.int64]
    language: npt.NDArray[np.int64]
    score: npt.NDArray[np.float64]
    positive: npt.NDArray[np.bool_]
    seconds: npt.NDArray[np.int64]
    """Offsets from `T0` in seconds, whole minutes so that timestamps can be shared."""


def generate(rows: int, *, labels: int, languages: int, days: int, seed: int) -> RawPredictions:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, labels, rows)
    # Scores drift with the day, so windows differ; some land on exactly 0 and 1.
    seconds = rng.integers(0, days * 1440, rows) * 60
    score = np.clip(rng.beta(2 + seconds / 86400 / days, 5, rows), 0, 1)
    score[rng.integers(0, rows, rows // 1000)] = 1.0
    score[rng.integers(0, rows, rows // 1000)] = 0.0
    score = np.round(score, 6)
    return RawPredictions(
        label=label,
        language=rng.integers(0, languages, rows),
        score=score,
        positive=score >= 0.5,
        seconds=seconds,
    )


def raw_rows(raw: RawPredictions, *, model_id: str, batch: int = 50_000,
             ) -> Iterator[list[PredictionRow]]:
    """Yield the generated predictions as rows, in batches."""
    minutes = int(raw.seconds.max()) // 60 + 1 if len(raw.seconds) else 0
    times = [T0 + dt.timedelta(minutes=minute) for minute in range(minutes)]
    label_names = [f"label{k}" for k in range(int(raw.label.max()) + 1)]
    language_names = [f"lang{k}" for k in range(int(raw.language.max()) + 1)]
    for begin in range(0, len(raw.label), batch):
        end = min(begin + batch, len(raw.label))
        yield [
            PredictionRow(model_id, "claude", language_names[language], label_names[label],
                          score, positive, times[second // 60], str(number))
            for number, label, language, score, positive, second in zip(
                range(begin, end),
                raw.label[begin:end].tolist(),
                raw.language[begin:end].tolist(),
                raw.score[begin:end].tolist(),
                raw.positive[begin:end].tolist(),
                raw.seconds[begin:end].tolist(),
                strict=True,
            )
        ]
