"""Uncertainty of per-event metrics: bootstrap CIs over events, paired tests of two methods, a power table.

Events are the unit of resampling: a method's metric is one number per event, its summary the
mean over events.

* :func:`mean_ci`: the mean with a seeded percentile bootstrap CI (``scipy.stats.bootstrap``);
* :func:`paired_test`: two methods on the same events: the mean per-event difference with its
  bootstrap CI and two-sided bootstrap p, and the Wilcoxon signed-rank p (``scipy.stats.wilcoxon``);
* :func:`events_needed`: how many events a paired difference needs at a power, from the observed
  spread of per-event differences (``statsmodels`` one-sample t-test power).

Missing values (NaN) are left out and counted, never silently: every result carries its ``n``
and ``dropped``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MeanCI", "PairedTest", "events_needed", "mean_ci", "paired_test"]


@dataclass(frozen=True)
class MeanCI:
    """A mean over events with its bootstrap CI; ``dropped``: NaN values left out."""

    mean: float
    low: float
    high: float
    n: int
    dropped: int


@dataclass(frozen=True)
class PairedTest:
    """Method a minus method b on the events both have a value for."""

    diff: float  # mean per-event difference a - b
    low: float
    high: float
    p_bootstrap: float
    p_wilcoxon: float
    sd: float  # standard deviation of the per-event differences
    n: int
    dropped: int


def _bootstrap(x: np.ndarray, n_resamples: int, confidence: float, seed: int) -> tuple[float, float, np.ndarray]:
    from scipy import stats

    if x.size < 2 or np.all(x == x[0]):
        v = float(x[0]) if x.size else float("nan")
        return v, v, np.full(1, v)
    res = stats.bootstrap((x,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                          method="percentile", rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high), res.bootstrap_distribution


def mean_ci(values: Sequence[float] | np.ndarray, n_resamples: int = 2000, confidence: float = 0.95,
            seed: int = 0) -> MeanCI:
    """Mean of ``values`` (NaN left out and counted) with a percentile bootstrap CI, events resampled.

    >>> r = mean_ci([0.1, 0.2, np.nan, 0.3, 0.4])
    >>> round(r.mean, 3), r.n, r.dropped, r.low <= r.mean <= r.high
    (0.25, 4, 1, True)
    """
    x = np.asarray(values, dtype=float)
    ok = np.isfinite(x)
    x = x[ok]
    low, high, _ = _bootstrap(x, n_resamples, confidence, seed)
    return MeanCI(float(x.mean()) if x.size else float("nan"), low, high, int(x.size), int((~ok).sum()))


def paired_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, n_resamples: int = 2000,
                confidence: float = 0.95, seed: int = 0) -> PairedTest:
    """Paired comparison of per-event values ``a`` and ``b`` (same events, same order).

    The bootstrap resamples events (the per-event differences); its two-sided p is twice the share of
    resampled mean differences on the far side of 0 (at least 1 / n_resamples). Wilcoxon's p is 1 when
    every difference is 0.
    """
    from scipy import stats

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired values need the same shape, got {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    d = x[ok] - y[ok]
    if d.size == 0:
        return PairedTest(*(float("nan"),) * 6, 0, int((~ok).sum()))
    low, high, dist = _bootstrap(d, n_resamples, confidence, seed)
    if np.all(d == d[0]):
        p_boot = 1.0 if d[0] == 0 else 0.0
    else:
        p_boot = min(1.0, max(2 * min(np.mean(dist <= 0), np.mean(dist >= 0)), 1 / n_resamples))
    if np.all(d == 0) or d.size < 2:
        p_wil = 1.0
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            p_wil = float(stats.wilcoxon(d, zero_method="wilcox").pvalue)
    return PairedTest(float(d.mean()), low, high, float(p_boot), p_wil,
                      float(d.std(ddof=1)) if d.size > 1 else float("nan"), int(d.size), int((~ok).sum()))


def events_needed(difference: float, sd: float, power: float = 0.8, alpha: float = 0.05) -> float:
    """Events a paired two-sided t-test needs to detect a mean difference ``difference`` at ``power`` when the
    per-event differences have standard deviation ``sd`` (statsmodels ``TTestPower``; rounded up).

    >>> events_needed(0.05, 0.2)
    128
    """
    from statsmodels.stats.power import TTestPower

    if not (sd > 0 and difference > 0):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels warns before it gives up (e.g. an effect of thousands of sds)
        n = float(TTestPower().solve_power(effect_size=difference / sd, alpha=alpha, power=power,
                                           alternative="two-sided"))
    return math.ceil(n) if math.isfinite(n) else float("nan")
