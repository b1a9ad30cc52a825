"""Rolling OLS loadings: cross-checked against statsmodels, point in time, vectorised."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.regression.rolling import RollingOLS

from kgfin.market import MarketInputError, rolling_ols


def _panel(seed: int, t_len: int = 400, n: int = 6, k: int = 3, gaps: bool = True):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.01, (t_len, k))
    b = rng.normal(1, 0.4, (n, k))
    y = 0.0004 + x @ b.T + rng.normal(0, 0.02, (t_len, n))
    if gaps:
        y[rng.random((t_len, n)) < 0.05] = np.nan  # scattered missing days
        y[: t_len // 3, 1] = np.nan  # a late listing
        y[-40:, 2] = np.nan  # a delisting
        x[70] = np.nan  # a day without factor data
    return y, x


def _statsmodels_applied(y: np.ndarray, x: np.ndarray, window: int, min_obs: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-stock RollingOLS params and residual std, shifted so that row d uses rows < d."""
    res = RollingOLS(y, sm.add_constant(x, has_constant="add"), window=window, min_nobs=min_obs,
                     expanding=True, missing="drop").fit()
    params = np.vstack([np.full((1, x.shape[1] + 1), np.nan), res.params[:-1]])
    with np.errstate(invalid="ignore"):
        sigma = np.concatenate([[np.nan], np.sqrt(res.ssr[:-1] / (res.nobs[:-1] - x.shape[1] - 1))])
    return params, sigma


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("gaps", [False, True])
def test_matches_statsmodels_rolling_ols(k: int, gaps: bool) -> None:
    y, x = _panel(seed=k, k=k, gaps=gaps)
    window, min_obs = 120, 60
    fit = rolling_ols(y, x, window=window, min_obs=min_obs)
    worst = 0.0
    for n in range(y.shape[1]):
        ref, ref_sigma = _statsmodels_applied(y[:, n], x, window, min_obs)
        ours = np.column_stack([fit.alpha[:, n], fit.beta[:, n]])
        assert np.array_equal(np.isnan(ours), np.isnan(ref)), f"stock {n}: different fitted days"
        assert np.array_equal(np.isnan(fit.sigma[:, n]), np.isnan(ref_sigma))
        worst = max(worst, float(np.nanmax(np.abs(ours - ref))))
        assert np.nanmax(np.abs(fit.sigma[:, n] - ref_sigma)) <= 1e-10
    assert worst <= 1e-8
    assert np.isfinite(fit.beta).any()


@pytest.mark.parametrize("t_len", [90, 120, 121, 122])
def test_history_shorter_than_the_window_matches_statsmodels(t_len: int) -> None:
    """Fewer days than the window (a one-year market with a 252-day window): expanding fits, no crash."""
    y, x = _panel(seed=3, t_len=t_len, gaps=False)
    fit = rolling_ols(y, x, window=120, min_obs=60)
    ref, _ = _statsmodels_applied(y[:, 0], x, 120, 60)
    ours = np.column_stack([fit.alpha[:, 0], fit.beta[:, 0]])
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    assert np.nanmax(np.abs(ours - ref)) <= 1e-8


def test_window_uses_only_earlier_days() -> None:
    """The fit applied on day d is OLS on rows max(0, d - window) .. d - 1, computed directly."""
    y, x = _panel(seed=11, gaps=True)
    window, min_obs = 50, 30
    fit = rolling_ols(y, x, window=window, min_obs=min_obs)
    for d in (31, 49, 50, 51, 200, 399):
        for n in range(y.shape[1]):
            rows = np.arange(max(0, d - window), d)
            ok = np.isfinite(y[rows, n]) & np.isfinite(x[rows]).all(axis=1)
            if ok.sum() < min_obs:
                assert np.isnan(fit.beta[d, n]).all()
                continue
            xs = sm.add_constant(x[rows][ok], has_constant="add")
            coef = np.linalg.lstsq(xs, y[rows, n][ok], rcond=None)[0]
            np.testing.assert_allclose(fit.beta[d, n], coef[1:], atol=1e-9)
            np.testing.assert_allclose(fit.alpha[d, n], coef[0], atol=1e-9)
            assert fit.nobs[d, n] == ok.sum()


@pytest.mark.parametrize("d", [0, 59, 60, 150, 398])
def test_point_in_time_changes_after_day_d_leave_fits_unchanged(d: int) -> None:
    y, x = _panel(seed=3, gaps=True)
    base = rolling_ols(y, x, window=60, min_obs=40)
    rng = np.random.default_rng(d)
    changed = y.copy()
    changed[d:] = rng.normal(0, 0.5, changed[d:].shape)  # day d itself and everything after
    changed[d + 1:, 0] = np.nan  # a previously gap-free stock gets a gap after d
    x_changed = x.copy()
    x_changed[d:] = rng.normal(0, 0.05, x_changed[d:].shape)
    new = rolling_ols(changed, x_changed, window=60, min_obs=40)
    upto = slice(0, d + 1)  # the fits applied on days 0..d
    for a, b in ((base.beta, new.beta), (base.alpha, new.alpha), (base.sigma, new.sigma), (base.nobs, new.nobs)):
        assert np.array_equal(a[upto], b[upto], equal_nan=True)
    if d + 1 < y.shape[0]:
        assert not np.array_equal(base.beta[d + 1:], new.beta[d + 1:], equal_nan=True)


def test_each_stock_independent_of_the_others() -> None:
    y, x = _panel(seed=5, n=40, gaps=True)
    full = rolling_ols(y, x, window=80, min_obs=40, block=7)
    for cols in ([0], [3, 17], list(range(10, 40))):
        part = rolling_ols(y[:, cols], x, window=80, min_obs=40)
        assert np.array_equal(part.beta, full.beta[:, cols], equal_nan=True)
        assert np.array_equal(part.sigma, full.sigma[:, cols], equal_nan=True)


def test_exact_linear_data_recovered() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.01, (300, 3))
    b = np.array([[1.2, -0.3, 0.5], [0.7, 0.2, 0.0]])
    y = 0.001 + x @ b.T
    fit = rolling_ols(y, x, window=100, min_obs=50)
    np.testing.assert_allclose(fit.beta[150], b, atol=1e-9)
    np.testing.assert_allclose(fit.alpha[150], 0.001, atol=1e-11)
    assert np.nanmax(fit.sigma) < 1e-9
    assert np.isnan(fit.beta[:50]).all() and np.isfinite(fit.beta[50:]).all()
    np.testing.assert_allclose(fit.expected(x, include_alpha=True)[50:], y[50:], atol=1e-10)


def test_without_constant() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.01, (200, 1))
    y = 0.9 * x + rng.normal(0, 0.001, (200, 1))
    fit = rolling_ols(y, x, window=100, min_obs=50, add_constant=False)
    res = RollingOLS(y[:, 0], x, window=100, min_nobs=50, expanding=True).fit()
    np.testing.assert_allclose(fit.beta[1:, 0, 0], res.params[:-1, 0], atol=1e-10, equal_nan=True)
    assert (fit.alpha == 0).all()


@pytest.mark.parametrize(
    ("y", "x", "kwargs", "match"),
    [
        (np.zeros((10, 2)), np.zeros((9, 1)), {}, "same T"),
        (np.zeros(10), np.zeros((10, 1)), {}, "same T"),
        (np.zeros((300, 2)), np.zeros((300, 1)), {"window": 100, "min_obs": 150}, "min_obs <= window"),
        (np.zeros((300, 2)), np.zeros((300, 5)), {"window": 100, "min_obs": 6}, "min_obs"),
        (np.full((300, 2), np.inf), np.zeros((300, 1)), {}, "infinite"),
    ],
)
def test_bad_input(y: np.ndarray, x: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(MarketInputError, match=match):
        rolling_ols(y, x, **kwargs)


def test_degenerate_factor_gives_nan_not_garbage() -> None:
    """A factor that is constant in the window makes X'X singular: no fit, no exception."""
    rng = np.random.default_rng(2)
    x = np.column_stack([rng.normal(0, 0.01, 200), np.zeros(200)])
    y = rng.normal(0, 0.01, (200, 2))
    fit = rolling_ols(y, x, window=100, min_obs=50)
    assert not np.isfinite(fit.beta[100:, :, 1]).any()
