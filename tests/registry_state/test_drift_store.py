"""Prediction writes and drift aggregation in SQL, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pytest
import sqlalchemy as sa

from policies.drift_metrics import compare
from registry_state import drift_store
from registry_state.drift_store import CountRequest, Window
from registry_state.prediction_store import analyze, write_predictions
from registry_state.tables_drift import predictions
from support.predictions import T0, generate, load, raw_rows, row

DAY = dt.timedelta(days=1)


def count_rows(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(predictions))
                   .scalar_one())


def test_write_predictions_skips_duplicates(engine: sa.Engine) -> None:
    rows = [row(request_id="a"), row(request_id="a", label="risk_min_cues"), row(request_id="b")]

    first = load(engine, rows)
    second = load(engine, [*rows, row(request_id="c")])

    assert (first.received, first.inserted) == (3, 3)
    assert (second.received, second.inserted, second.duplicates) == (4, 1, 3)
    assert count_rows(engine) == 4


def test_write_predictions_duplicate_in_batch(engine: sa.Engine) -> None:
    result = load(engine, [row(request_id="a"), row(request_id="a", positive=False)])

    assert result.inserted == 1
    assert count_rows(engine) == 1


def test_write_predictions_round_trip(engine: sa.Engine) -> None:
    at = dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    load(engine, [row(score=0.25, positive=False, at=at, language="uk")])

    with engine.connect() as connection:
        stored = connection.execute(sa.select(predictions)).one()
    assert stored.created_at == at
    assert stored.created_at.tzinfo == dt.UTC
    assert stored.score == 0.25
    assert stored.positive is False
    assert stored.language == "uk"


def test_write_predictions_rolls_back_on_error(engine: sa.Engine) -> None:
    def batches() -> object:
        yield [row(request_id="a")]
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"), engine.begin() as connection:
        write_predictions(connection, batches())  # type: ignore[arg-type]

    assert count_rows(engine) == 0


def positive_request(**fields: object) -> CountRequest:
    values: dict[str, object] = {
        "model_ids": ["q2q-claude-v2-multilingual"],
        "current": Window(T0 + 7 * DAY, T0 + 14 * DAY),
    }
    return CountRequest(**(values | fields))  # type: ignore[arg-type]


def test_count_window_is_half_open(engine: sa.Engine) -> None:
    request = positive_request()
    load(engine, [
        row(at=request.current.start, request_id="at-start"),
        row(at=request.current.end - dt.timedelta(microseconds=1), request_id="before-end"),
        row(at=request.current.end, request_id="at-end"),
        row(at=request.current.start - dt.timedelta(microseconds=1), request_id="before-start"),
    ])

    with engine.connect() as connection:
        counts = drift_store.count_predictions(connection, request)

    assert counts.keys == [("q2q-claude-v2-multilingual", "confidence_increase", "en")]
    assert counts.current.tolist() == [[2, 0]]


def test_count_positive_share_bins(engine: sa.Engine) -> None:
    load(engine, [
        row(at=T0 + 8 * DAY, positive=True, request_id="1"),
        row(at=T0 + 8 * DAY, positive=False, request_id="2"),
        row(at=T0 + 8 * DAY, positive=False, request_id="3"),
        row(at=T0 + 8 * DAY, positive=True, language="uk", request_id="4"),
    ])

    with engine.connect() as connection:
        counts = drift_store.count_predictions(connection, positive_request())

    by_key = dict(zip(counts.keys, counts.current.tolist(), strict=True))
    assert by_key[("q2q-claude-v2-multilingual", "confidence_increase", "en")] == [1, 2]
    assert by_key[("q2q-claude-v2-multilingual", "confidence_increase", "uk")] == [1, 0]


@pytest.mark.parametrize(
    ("score", "expected_bin"),
    [
        pytest.param(0.0, 0, id="zero"),
        pytest.param(0.1, 1, id="edge-0.1"),
        pytest.param(0.29999, 2, id="below-0.3"),
        pytest.param(0.7, 7, id="edge-0.7"),
        pytest.param(0.95, 9, id="inside-last"),
        pytest.param(1.0, 9, id="one-in-last-bin"),
    ],
)
def test_count_histogram_bins(engine: sa.Engine, score: float, expected_bin: int) -> None:
    load(engine, [row(at=T0 + 8 * DAY, score=score)])

    with engine.connect() as connection:
        counts = drift_store.count_predictions(connection, positive_request(bins=10))

    expected = np.zeros(10, dtype=int)
    expected[min(int(np.floor(score * 10)), 9)] += 1
    assert counts.current[0].tolist() == expected.tolist()
    assert counts.current[0][expected_bin] == 1


def test_count_histogram_skips_rows_without_score(engine: sa.Engine) -> None:
    load(engine, [row(at=T0 + 8 * DAY, score=None, request_id="1"),
                  row(at=T0 + 8 * DAY, score=0.5, request_id="2")])

    with engine.connect() as connection:
        counts = drift_store.count_predictions(connection, positive_request(bins=4))

    assert counts.current.tolist() == [[0, 0, 1, 0]]


def test_count_baseline_and_current_windows(engine: sa.Engine) -> None:
    load(engine, [
        row(at=T0, positive=True, request_id="b1"),
        row(at=T0 + DAY, positive=False, request_id="b2"),
        row(at=T0 + 3 * DAY, positive=False, request_id="gap"),
        row(at=T0 + 8 * DAY, positive=True, request_id="c1"),
        row(at=T0 + 8 * DAY, label="new_label", request_id="c2"),
    ])
    request = positive_request(baseline=Window(T0, T0 + 2 * DAY))

    with engine.connect() as connection:
        counts = drift_store.count_predictions(connection, request)

    by_key = {key[1]: (base.tolist(), cur.tolist())
              for key, base, cur in zip(counts.keys, counts.baseline, counts.current,
                                        strict=True)}
    assert by_key == {"confidence_increase": ([1, 1], [1, 0]), "new_label": ([0, 0], [1, 0])}


def test_count_rejects_overlapping_windows(engine: sa.Engine) -> None:
    request = positive_request(baseline=Window(T0, T0 + 8 * DAY))

    with engine.connect() as connection, pytest.raises(drift_store.WindowOverlapError,
                                                       match="after the current window starts"):
        drift_store.count_predictions(connection, request)


def test_count_filters_and_extra_keys(engine: sa.Engine) -> None:
    load(engine, [
        row(at=T0 + 8 * DAY, label="a", language="en", request_id="1"),
        row(at=T0 + 8 * DAY, label="b", language="en", request_id="2"),
        row(at=T0 + 8 * DAY, label="a", language="de", request_id="3"),
        row(at=T0 + 8 * DAY, label="a", model_id="other", request_id="4"),
    ])
    request = positive_request(labels=["a"], languages=["en", "fr"])
    extra = [("q2q-claude-v2-multilingual", "a", "fr")]

    with engine.connect() as connection:
        counts = drift_store.count_predictions(connection, request, extra_keys=extra)

    assert counts.keys == [("q2q-claude-v2-multilingual", "a", "en"),
                           ("q2q-claude-v2-multilingual", "a", "fr")]
    assert counts.current.tolist() == [[1, 0], [0, 0]]


def test_count_empty_table(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        counts = drift_store.count_predictions(connection, positive_request(bins=10))

    assert counts.keys == []
    assert counts.current.shape == (0, 10)


MILLION = 1_000_000


def test_check_million_rows_matches_numpy(engine: sa.Engine) -> None:
    raw = generate(MILLION, labels=8, languages=10, days=28, seed=7)
    started = time.perf_counter()
    with engine.begin() as connection:
        write_predictions(connection, raw_rows(raw, model_id="m"), skip_duplicates=False)
        analyze(connection)
    loaded = time.perf_counter()
    baseline_window = Window(T0, T0 + 14 * DAY)
    current_window = Window(T0 + 21 * DAY, T0 + 28 * DAY)
    request = CountRequest(model_ids=["m"], current=current_window, baseline=baseline_window,
                           bins=10)

    with engine.connect() as connection:
        counts = drift_store.count_predictions(connection, request)
    counted = time.perf_counter()
    result = compare(counts.baseline, counts.current, min_sample_size=100,
                     baseline_sizes=counts.baseline.sum(axis=1))

    # The same counts and metrics straight from the raw rows.
    group = raw.label * 10 + raw.language
    bins = np.minimum(np.floor(raw.score * 10).astype(np.int64), 9)
    in_baseline = raw.seconds < 14 * 86400
    in_current = raw.seconds >= 21 * 86400
    expected_baseline = np.bincount(group[in_baseline] * 10 + bins[in_baseline],
                                    minlength=800).reshape(80, 10)
    expected_current = np.bincount(group[in_current] * 10 + bins[in_current],
                                   minlength=800).reshape(80, 10)
    expected = compare(expected_baseline, expected_current, min_sample_size=100,
                       baseline_sizes=expected_baseline.sum(axis=1))
    expected_keys = [("m", f"label{i // 10}", f"lang{i % 10}") for i in range(80)]

    assert counts.keys == sorted(expected_keys)
    order = [expected_keys.index(key) for key in counts.keys]
    assert np.array_equal(counts.baseline, expected_baseline[order])
    assert np.array_equal(counts.current, expected_current[order])
    assert np.allclose(result.psi, expected.psi[order], rtol=0, atol=1e-12)
    assert np.allclose(result.js, expected.js[order], rtol=0, atol=1e-12)
    assert result.status == [expected.status[i] for i in order]
    print(f"{engine.dialect.name}: load {loaded - started:.1f}s, count {counted - loaded:.2f}s")
