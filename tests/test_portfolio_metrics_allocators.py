"""Performance metrics by hand; allocators satisfy their constraints and optimality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgfin.config import ConfigError
from kgfin.portfolio import (
    PortfolioInputError,
    SharpeConfig,
    allocate,
    annualized_return,
    annualized_volatility,
    equal_weight,
    inverse_volatility,
    markowitz,
    max_drawdown,
    min_variance,
    performance,
    performance_table,
    project_simplex,
    sharpe_ci,
    sharpe_ratio,
    win_rate,
)

# ---------------------------------------------------------------- metrics


def test_sharpe_ci_by_hand_for_a_skewed_series() -> None:
    """Mertens' standard error from the moments computed by hand (ddof 0), 3 of 4 periods at +2 %, 1 at -2 %."""
    r = np.array([0.02, 0.02, 0.02, -0.02] * 25)
    n, mean = 100, 0.01
    sd1 = np.sqrt(np.sum((r - mean) ** 2) / (n - 1))
    s = mean / sd1
    m2 = np.mean((r - mean) ** 2)
    skew = np.mean((r - mean) ** 3) / m2 ** 1.5
    kurt = np.mean((r - mean) ** 4) / m2 ** 2
    assert skew == pytest.approx(-2 / np.sqrt(3)) and kurt == pytest.approx(7 / 3)  # Bernoulli(3/4) moments
    se = np.sqrt((1 + s * s / 2 - skew * s + (kurt - 3) / 4 * s * s) / n)
    got = sharpe_ci(r, periods_per_year=4, confidence=0.9)
    assert got.periods == n and got.sharpe == pytest.approx(s * 2)
    assert got.low == pytest.approx((s - 1.644854 * se) * 2, rel=1e-6)
    assert got.high == pytest.approx((s + 1.644854 * se) * 2, rel=1e-6)
    assert np.isnan(sharpe_ci([0.01, 0.01, 0.01]).sharpe)  # no variation: no ratio


def test_sharpe_ci_covers_the_true_ratio_at_its_level() -> None:
    """I.i.d. normal returns with per-period Sharpe 0.1: the 95 % interval covers it in about 95 % of 400 samples."""
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(400):
        ci = sharpe_ci(rng.normal(0.001, 0.01, 250), periods_per_year=1)
        hits.append(ci.low <= 0.1 <= ci.high)
    assert 0.92 <= np.mean(hits) <= 0.98


def test_sharpe_bootstrap_is_seeded_and_agrees_with_the_asymptotic_interval() -> None:
    r = np.random.default_rng(1).normal(0.0005, 0.01, 500)
    a = sharpe_ci(r, method="bootstrap", n_resamples=500, seed=3)
    assert a == sharpe_ci(r, method="bootstrap", n_resamples=500, seed=3)
    assert a != sharpe_ci(r, method="bootstrap", n_resamples=500, seed=4)
    ref = sharpe_ci(r)
    assert a.sharpe == ref.sharpe and a.low < a.sharpe < a.high
    assert (a.high - a.low) == pytest.approx(ref.high - ref.low, rel=0.3)
    with pytest.raises(ValueError, match="unknown Sharpe CI method"):
        sharpe_ci(r, method="jackknife")  # type: ignore[arg-type]


def test_performance_table_hides_sharpe_under_min_periods() -> None:
    rng = np.random.default_rng(2)
    long = pd.Series(rng.normal(0.001, 0.01, 80))
    frame = pd.DataFrame({"long": long, "short": [*rng.normal(0.01, 0.001, 12), *[np.nan] * 68]})
    table = performance_table(frame, config=SharpeConfig(min_periods=60)).set_index("strategy")
    assert table.loc["long", "periods"] == 80 and table.loc["short", "periods"] == 12
    assert table.loc["long", "sharpe"] == pytest.approx(sharpe_ratio(long))
    assert table.loc["long", "sharpe CI low"] < table.loc["long", "sharpe"] < table.loc["long", "sharpe CI high"]
    assert table.loc["long", "shown"] == "all"
    for col in ("sharpe", "sharpe CI low", "sharpe CI high", "max_drawdown", "annual_return"):
        assert np.isnan(table.loc["short", col]), col  # 12 days of +1 % would read as a Sharpe of about 160
    assert table.loc["short", "shown"].startswith("12 < 60 periods")
    sd = long.std(ddof=1)
    assert table.loc["long", "mean CI high"] - table.loc["long", "mean"] == pytest.approx(1.990450 * sd / np.sqrt(80),
                                                                                         rel=1e-5)


def test_metrics_by_hand() -> None:
    r = [0.02, -0.01, 0.03, -0.04, 0.01]
    mean = 0.002
    sd = np.sqrt(sum((x - mean) ** 2 for x in r) / 4)
    assert sharpe_ratio(r, periods_per_year=252) == pytest.approx(mean / sd * np.sqrt(252))
    assert sharpe_ratio(r, periods_per_year=252, rf=0.001) == pytest.approx((mean - 0.001) / sd * np.sqrt(252))
    assert annualized_volatility(r, periods_per_year=252) == pytest.approx(sd * np.sqrt(252))
    growth = 1.02 * 0.99 * 1.03 * 0.96 * 1.01
    assert annualized_return(r, periods_per_year=252) == pytest.approx(growth ** (252 / 5) - 1)
    # wealth 1, 1.02, 1.0098, 1.040094, 0.99849, 1.008475: peak 1.040094, trough 0.99849
    assert max_drawdown(r) == pytest.approx(0.96 - 1)
    assert max_drawdown([-0.1, 0.05]) == pytest.approx(-0.1)  # the start counts as a peak
    assert max_drawdown([-0.1, 0.2, -0.25]) == pytest.approx(1.08 * 0.75 / 1.08 - 1)
    assert win_rate(r) == pytest.approx(0.6)
    assert win_rate([0.0, 0.0, 0.01]) == pytest.approx(1 / 3)  # flat days are not wins


def test_metrics_edge_cases() -> None:
    assert np.isnan(sharpe_ratio([0.01, 0.01, 0.01]))
    assert np.isnan(sharpe_ratio([0.01]))
    assert sharpe_ratio([0.01, np.nan, 0.03]) == pytest.approx(sharpe_ratio([0.01, 0.03]))
    assert np.isnan(max_drawdown([])) and np.isnan(win_rate([])) and np.isnan(annualized_return([]))
    assert annualized_return([-1.0, 0.5]) == -1.0


def test_performance_table() -> None:
    frame = pd.DataFrame({"a": [0.01, -0.02, 0.03], "b": [0.0, 0.01, np.nan]})
    out = performance(frame, periods_per_year=12)
    assert out["strategy"].tolist() == ["a", "b"]
    assert out["periods"].tolist() == [3, 2]
    assert out.loc[0, "sharpe"] == pytest.approx(sharpe_ratio(frame["a"], 12))
    assert out.loc[1, "max_drawdown"] == 0.0
    assert list(out.columns) == ["strategy", "periods", "mean", "annual_return", "annual_vol", "sharpe",
                                 "max_drawdown", "win_rate"]


# ---------------------------------------------------------------- allocators


def _window(seed: int, n: int, days: int = 30) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = rng.normal(0.0005, 0.01, (days, 2))
    return f @ rng.normal(1, 0.4, (n, 2)).T + rng.normal(0.0003, 0.015, (days, n)) * rng.uniform(0.5, 2, n)


def _feasible(w: np.ndarray, n: int) -> None:
    assert w.shape == (n,)
    assert w.sum() == pytest.approx(1.0, abs=1e-10)
    assert (w >= 0).all()


@pytest.mark.parametrize("n", [1, 2, 5, 20, 45])
@pytest.mark.parametrize("method", ["equal", "inverse_vol", "markowitz", "min_variance"])
def test_allocators_satisfy_constraints(method: str, n: int) -> None:
    _feasible(allocate(method, _window(n, n)), n)  # n = 45 > 30 days: singular covariance


@pytest.mark.parametrize("seed", range(5))
def test_min_variance_lowest_in_sample_variance(seed: int) -> None:
    r = _window(seed, 12)
    cov = np.cov(r, rowvar=False)
    var = {m: (w := allocate(m, r)) @ cov @ w for m in ("equal", "inverse_vol", "markowitz", "min_variance")}
    best = var["min_variance"]
    assert all(best <= v + 1e-15 for v in var.values()), var
    random = np.random.default_rng(seed).dirichlet(np.full(12, 0.3), size=5000)
    assert best <= np.einsum("bi,ij,bj->b", random, cov, random).min() + 1e-15


@pytest.mark.parametrize("seed", range(4))
def test_min_variance_kkt(seed: int) -> None:
    """Optimal iff the marginal variance is equal on the holdings and no lower elsewhere."""
    r = _window(seed, 15)
    w = min_variance(r)
    g = np.cov(r, rowvar=False) @ w
    held = w > 1e-7
    lam = g[held].mean()
    assert np.allclose(g[held], lam, rtol=1e-5, atol=1e-12)
    assert (g[~held] >= lam * (1 - 1e-5)).all()


@pytest.mark.parametrize("gamma", [1.0, 50.0, 5000.0])
def test_markowitz_kkt(gamma: float) -> None:
    r = _window(7, 10)
    mu, cov = r.mean(axis=0), np.cov(r, rowvar=False)
    w = markowitz(r, risk_aversion=gamma)
    h = mu - gamma * cov @ w  # marginal utility
    held = w > 1e-7
    top = h[held].mean()
    scale = np.abs(h).max()
    assert np.allclose(h[held], top, atol=1e-6 * scale)
    assert (h[~held] <= top + 1e-6 * scale).all()


def test_markowitz_limits() -> None:
    r = _window(3, 8)
    # daily returns with risk aversion 1: the variance term is tiny, the best mean wins
    assert np.argmax(markowitz(r)) == np.argmax(r.mean(axis=0))
    np.testing.assert_allclose(markowitz(r, risk_aversion=1e8), min_variance(r), atol=1e-4)


def test_closed_forms() -> None:
    r = _window(4, 2)
    cov = np.cov(r, rowvar=False)
    w1 = (cov[1, 1] - cov[0, 1]) / (cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert 0 < w1 < 1
    np.testing.assert_allclose(min_variance(r), [w1, 1 - w1], atol=1e-7)
    r5 = _window(5, 5)
    inv_var = 1 / r5.var(axis=0, ddof=1)
    np.testing.assert_allclose(min_variance(r5, shrinkage=1.0), inv_var / inv_var.sum(), atol=1e-7)
    two = np.array([[0.01, 0.02], [-0.01, -0.02], [0.01, 0.02]])
    np.testing.assert_allclose(inverse_volatility(two), [2 / 3, 1 / 3])
    np.testing.assert_allclose(equal_weight(4), [0.25] * 4)


def test_project_simplex() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        v = rng.normal(size=7)
        p = project_simplex(v)
        assert p.sum() == pytest.approx(1.0) and (p >= 0).all()
        # the projection is the closest simplex point: no random simplex point is closer
        others = rng.dirichlet(np.ones(7), size=500)
        assert np.linalg.norm(v - p) <= np.linalg.norm(v - others, axis=1).min() + 1e-12
    np.testing.assert_allclose(project_simplex(np.array([0.2, 0.3, 0.5])), [0.2, 0.3, 0.5])


def test_warm_start_gives_the_same_optimum() -> None:
    r = _window(9, 10)
    cold = min_variance(r)
    warm = min_variance(r, start=np.r_[1.0, np.zeros(9)])
    cov = np.cov(r, rowvar=False)
    assert warm @ cov @ warm == pytest.approx(cold @ cov @ cold, rel=1e-6)


def test_allocator_bad_input() -> None:
    r = _window(0, 3)
    r[2, 1] = np.nan
    with pytest.raises(PortfolioInputError, match="missing"):
        min_variance(r)
    with pytest.raises(PortfolioInputError, match="shape"):
        markowitz(np.ones((1, 3)))
    with pytest.raises(PortfolioInputError, match="unknown allocator"):
        allocate("risk_parity", _window(0, 3))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="risk_aversion"):
        markowitz(_window(0, 3), risk_aversion=-1)
