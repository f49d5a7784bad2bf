"""PSI and Jensen-Shannon divergence for many groups at once, and their status bands.

Input: two arrays of shape (groups, bins), the baseline and the current
distribution of each (model, label, language) group, as counts or shares.
Output: a `GroupMetrics` with PSI, JS divergence and a status per group. The
computation is vectorised over all groups with numpy; nothing here touches
the database. `reconciler.drift_check` calls `compare`.

Conventions:
- PSI = sum((current - baseline) * ln(current / baseline)), natural log.
- JS is the Jensen-Shannon divergence, 0.5 KL(P||M) + 0.5 KL(Q||M) with
  M = (P + Q) / 2 and the natural log, so it lies in [0, ln 2]. It is not the
  Jensen-Shannon distance (its square root) that scipy returns.
- Each row is turned into shares first, so counts and shares give the same
  result. A bin with a share of 0 on either side then gets `EPSILON`, and the
  row is renormalised to sum to 1, so neither metric divides by or takes the
  log of zero.
- Bands: value < moderate is none, moderate <= value <= alert is moderate,
  value > alert is alert. The defaults are PSI 0.1 and 0.2, JS 0.05 and 0.1.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

EPSILON = 1e-4
"""Share given to an empty bin before renormalising: one in 10,000 predictions."""

FloatArray = npt.NDArray[np.float64]


class DriftStatus(enum.StrEnum):
    NONE = "none"
    MODERATE = "moderate"
    ALERT = "alert"
    INSUFFICIENT_DATA = "insufficient_data"
    NO_BASELINE = "no_baseline"


_SEVERITY = {DriftStatus.NONE: 0, DriftStatus.MODERATE: 1, DriftStatus.ALERT: 2}


@dataclass(frozen=True)
class Bands:
    """The two thresholds of one metric: at `moderate` and above it is moderate,
    above `alert` it is an alert."""

    moderate: float
    alert: float

    def __post_init__(self) -> None:
        if not 0 <= self.moderate <= self.alert:
            raise ValueError(
                f"thresholds must satisfy 0 <= moderate <= alert, got moderate "
                f"{self.moderate} and alert {self.alert}"
            )


PSI_BANDS = Bands(moderate=0.1, alert=0.2)
JS_BANDS = Bands(moderate=0.05, alert=0.1)


def to_shares(distribution: npt.ArrayLike) -> FloatArray:
    """Divide each row by its sum; a row that sums to 0 stays all zeros."""
    values = np.atleast_2d(np.asarray(distribution, dtype=np.float64))
    if np.any(values < 0) or not np.all(np.isfinite(values)):
        raise ValueError("a distribution must hold finite, non-negative counts or shares")
    totals = values.sum(axis=1, keepdims=True)
    result: FloatArray = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    return result


def smooth(shares: FloatArray, epsilon: float = EPSILON) -> FloatArray:
    """Give empty bins `epsilon`, then renormalise each row to sum to 1."""
    filled = np.where(shares > 0, shares, epsilon)
    result: FloatArray = filled / filled.sum(axis=1, keepdims=True)
    return result


def psi(baseline: npt.ArrayLike, current: npt.ArrayLike) -> FloatArray:
    """Return the population stability index of each row pair."""
    expected = smooth(to_shares(baseline))
    actual = smooth(to_shares(current))
    result: FloatArray = np.sum((actual - expected) * np.log(actual / expected), axis=1)
    return result


def js_divergence(baseline: npt.ArrayLike, current: npt.ArrayLike) -> FloatArray:
    """Return the Jensen-Shannon divergence (natural log) of each row pair."""
    p = smooth(to_shares(baseline))
    q = smooth(to_shares(current))
    m = (p + q) / 2
    result: FloatArray = 0.5 * np.sum(p * np.log(p / m), axis=1) + 0.5 * np.sum(
        q * np.log(q / m), axis=1
    )
    return result


def band(values: npt.ArrayLike, bands: Bands) -> list[DriftStatus]:
    """Classify each value as none, moderate or alert."""
    array = np.asarray(values, dtype=np.float64)
    levels = np.where(array > bands.alert, 2, np.where(array >= bands.moderate, 1, 0))
    by_level = (DriftStatus.NONE, DriftStatus.MODERATE, DriftStatus.ALERT)
    return [by_level[level] for level in levels.ravel().tolist()]


@dataclass(frozen=True)
class GroupMetrics:
    """Metrics of every group; PSI and JS are NaN for insufficient_data and no_baseline groups."""

    psi: FloatArray
    js: FloatArray
    status: list[DriftStatus]
    psi_status: list[DriftStatus | None]
    js_status: list[DriftStatus | None]
    baseline_shares: FloatArray
    current_shares: FloatArray
    sample_size: npt.NDArray[np.int64]


def compare(
    baseline: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    min_sample_size: int,
    baseline_sizes: npt.ArrayLike | None = None,
    psi_bands: Bands = PSI_BANDS,
    js_bands: Bands = JS_BANDS,
) -> GroupMetrics:
    """Compare each group's current counts with its baseline and assign a status.

    `current` contains counts, so its row sums are the sample sizes. `baseline`
    contains counts or shares; `baseline_sizes` gives the number of predictions
    behind each baseline row when it was measured (a time window), so a thin
    baseline is also `insufficient_data`. A baseline row of zeros means the
    group has no baseline.

    Status, first match wins: current sample below `min_sample_size` (or a
    measured baseline below it) is insufficient_data; no baseline is
    no_baseline; otherwise the worse of the PSI and JS bands.
    """
    baseline_shares = to_shares(baseline)
    current_counts = np.atleast_2d(np.asarray(current, dtype=np.float64))
    if baseline_shares.shape != current_counts.shape:
        raise ValueError(
            f"baseline has shape {baseline_shares.shape} but current has shape "
            f"{current_counts.shape}; both need one row per group and one column per bin"
        )
    current_shares = to_shares(current_counts)
    sample_size = np.rint(current_counts.sum(axis=1)).astype(np.int64)

    thin = sample_size < min_sample_size
    if baseline_sizes is not None:
        sizes = np.asarray(baseline_sizes, dtype=np.float64)
        thin |= (sizes > 0) & (sizes < min_sample_size)
    missing = baseline_shares.sum(axis=1) == 0
    compared = ~thin & ~missing

    psi_values = np.where(compared, psi(baseline_shares, current_shares), np.nan)
    js_values = np.where(compared, js_divergence(baseline_shares, current_shares), np.nan)
    psi_bands_found = band(np.nan_to_num(psi_values), psi_bands)
    js_bands_found = band(np.nan_to_num(js_values), js_bands)

    status: list[DriftStatus] = []
    psi_status: list[DriftStatus | None] = []
    js_status: list[DriftStatus | None] = []
    for index in range(len(sample_size)):
        if not compared[index]:
            status.append(DriftStatus.INSUFFICIENT_DATA if thin[index]
                          else DriftStatus.NO_BASELINE)
            psi_status.append(None)
            js_status.append(None)
            continue
        by_psi, by_js = psi_bands_found[index], js_bands_found[index]
        status.append(max(by_psi, by_js, key=_SEVERITY.__getitem__))
        psi_status.append(by_psi)
        js_status.append(by_js)

    return GroupMetrics(
        psi=psi_values,
        js=js_values,
        status=status,
        psi_status=psi_status,
        js_status=js_status,
        baseline_shares=baseline_shares,
        current_shares=current_shares,
        sample_size=sample_size,
    )
