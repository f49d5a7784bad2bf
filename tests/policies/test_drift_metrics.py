"""PSI, Jensen-Shannon divergence and status bands, computed for many groups at once."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from policies.drift_metrics import (
    EPSILON,
    JS_BANDS,
    PSI_BANDS,
    Bands,
    DriftStatus,
    band,
    compare,
    js_divergence,
    psi,
    smooth,
    to_shares,
)


def test_psi_guide_example() -> None:
    assert psi([[0.30, 0.70]], [[0.50, 0.50]])[0] == pytest.approx(0.169460, abs=5e-7)


def test_js_guide_example() -> None:
    assert js_divergence([[0.30, 0.70]], [[0.50, 0.50]])[0] == pytest.approx(0.021006, abs=5e-7)


def test_guide_example_statuses() -> None:
    result = compare([[0.30, 0.70]], [[50, 50]], min_sample_size=100)

    assert result.psi_status == [DriftStatus.MODERATE]
    assert result.js_status == [DriftStatus.NONE]
    assert result.status == [DriftStatus.MODERATE]


def test_psi_alert_example() -> None:
    value = psi([[0.3, 0.7]], [[0.1, 0.9]])[0]

    assert value == pytest.approx(0.269985, abs=5e-7)
    assert band([value], PSI_BANDS) == [DriftStatus.ALERT]


def test_identical_distributions_give_zero() -> None:
    shares = [[0.3, 0.7], [0.1, 0.9], [0.5, 0.5]]

    assert psi(shares, shares).tolist() == [0.0, 0.0, 0.0]
    assert js_divergence(shares, shares).tolist() == [0.0, 0.0, 0.0]


def test_js_is_divergence_not_distance() -> None:
    # Disjoint distributions: the divergence tends to ln 2, the distance to its root.
    value = js_divergence([[1.0, 0.0]], [[0.0, 1.0]])[0]

    assert value == pytest.approx(math.log(2), abs=2e-3)
    assert value < math.sqrt(math.log(2))


def test_psi_is_symmetric() -> None:
    baseline, current = [[0.2, 0.3, 0.5]], [[0.4, 0.4, 0.2]]

    assert psi(baseline, current)[0] == pytest.approx(psi(current, baseline)[0])


def test_counts_and_shares_agree() -> None:
    counts_baseline = np.array([[30, 70], [3, 0], [250, 750]])
    counts_current = np.array([[500, 500], [0, 9], [1, 3]])

    assert np.allclose(psi(counts_baseline, counts_current),
                       psi(to_shares(counts_baseline), to_shares(counts_current)), atol=0)
    assert np.allclose(js_divergence(counts_baseline, counts_current),
                       js_divergence(to_shares(counts_baseline), to_shares(counts_current)),
                       atol=0)


def test_smooth_empty_bins_get_epsilon() -> None:
    smoothed = smooth(np.array([[0.0, 0.25, 0.75]]))

    assert smoothed.sum() == pytest.approx(1.0)
    assert smoothed[0, 0] == pytest.approx(EPSILON / (1 + EPSILON))
    assert smoothed[0, 1] == pytest.approx(0.25 / (1 + EPSILON))


def test_empty_bin_is_finite() -> None:
    value = psi([[0.5, 0.5, 0.0]], [[0.4, 0.4, 0.2]])[0]

    assert math.isfinite(value)
    # The empty baseline bin, smoothed to EPSILON, dominates the sum.
    assert value == pytest.approx(0.2 * math.log(0.2 / EPSILON), rel=0.05)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(0.0, DriftStatus.NONE, id="zero"),
        pytest.param(np.nextafter(0.1, 0), DriftStatus.NONE, id="just-below-moderate"),
        pytest.param(0.1, DriftStatus.MODERATE, id="at-moderate"),
        pytest.param(0.15, DriftStatus.MODERATE, id="between"),
        pytest.param(0.2, DriftStatus.MODERATE, id="at-alert"),
        pytest.param(np.nextafter(0.2, 1), DriftStatus.ALERT, id="just-above-alert"),
    ],
)
def test_psi_band_boundaries(value: float, expected: DriftStatus) -> None:
    assert band([value], PSI_BANDS) == [expected]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(np.nextafter(0.05, 0), DriftStatus.NONE, id="just-below-moderate"),
        pytest.param(0.05, DriftStatus.MODERATE, id="at-moderate"),
        pytest.param(0.1, DriftStatus.MODERATE, id="at-alert"),
        pytest.param(np.nextafter(0.1, 1), DriftStatus.ALERT, id="just-above-alert"),
    ],
)
def test_js_band_boundaries(value: float, expected: DriftStatus) -> None:
    assert band([value], JS_BANDS) == [expected]


def test_bands_reject_wrong_order() -> None:
    with pytest.raises(ValueError, match="moderate <= alert"):
        Bands(moderate=0.3, alert=0.2)


def test_compare_status_is_worse_band() -> None:
    # PSI moderate and JS alert: the group is an alert.
    result = compare([[0.3, 0.7]], [[50, 50]], min_sample_size=1,
                     js_bands=Bands(moderate=0.01, alert=0.02))

    assert result.psi_status == [DriftStatus.MODERATE]
    assert result.js_status == [DriftStatus.ALERT]
    assert result.status == [DriftStatus.ALERT]


def test_compare_empty_current_insufficient() -> None:
    result = compare([[0.3, 0.7]], [[0, 0]], min_sample_size=1)

    assert result.status == [DriftStatus.INSUFFICIENT_DATA]
    assert math.isnan(result.psi[0])
    assert math.isnan(result.js[0])
    assert result.sample_size.tolist() == [0]


def test_compare_below_minimum_insufficient() -> None:
    result = compare([[0.3, 0.7]], [[10, 89]], min_sample_size=100)

    assert result.status == [DriftStatus.INSUFFICIENT_DATA]
    assert result.psi_status == [None]


def test_compare_thin_measured_baseline_insufficient() -> None:
    result = compare([[3, 7]], [[50, 50]], min_sample_size=100, baseline_sizes=[10])

    assert result.status == [DriftStatus.INSUFFICIENT_DATA]


def test_compare_no_baseline() -> None:
    result = compare([[0, 0]], [[60, 40]], min_sample_size=100)

    assert result.status == [DriftStatus.NO_BASELINE]
    assert math.isnan(result.psi[0])


def test_compare_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="one row per group and one column per bin"):
        compare([[0.5, 0.5]], [[1, 2, 3]], min_sample_size=1)


def test_to_shares_rejects_negative() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        to_shares([[1, -1]])


def test_sample_from_baseline_no_alert() -> None:
    rng = np.random.default_rng(20260110)
    baseline = np.array([[0.30, 0.70]])
    positives = int((rng.random(50) < 0.30).sum())

    result = compare(baseline, [[positives, 50 - positives]], min_sample_size=50)

    assert result.status[0] in {DriftStatus.NONE, DriftStatus.MODERATE}
    assert result.status[0] is not DriftStatus.ALERT


def test_metric_stage_all_groups_fast() -> None:
    rng = np.random.default_rng(1)
    baseline = rng.integers(0, 10_000, (80, 10))
    current = rng.integers(0, 10_000, (80, 10))
    compare(baseline, current, min_sample_size=100)

    started = time.perf_counter()
    for _ in range(10):
        compare(baseline, current, min_sample_size=100, baseline_sizes=baseline.sum(axis=1))
    elapsed = (time.perf_counter() - started) / 10

    assert elapsed < 0.010
