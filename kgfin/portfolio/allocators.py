"""Benchmark allocators: equal weight, inverse volatility, Markowitz, minimum variance.

All return long-only, fully invested weights (``w >= 0``, ``sum(w) = 1``) for N assets
from a look-back window of returns (L, N):

* equal weight: ``w_i = 1 / N``;
* inverse volatility: ``w_i ∝ 1 / sigma_i`` (sample standard deviations, ddof 1);
* Markowitz: ``max_w  w'mu - (gamma / 2) w'Sigma w`` (``gamma`` = risk aversion, default 1);
* minimum variance: ``min_w  w'Sigma w``;

with ``mu`` the sample mean and ``Sigma`` the sample covariance (ddof 1) of the window,
optionally shrunk towards its diagonal: ``(1 - delta) Sigma + delta diag(Sigma)``. The two
quadratic programmes are solved by SLSQP (scipy) with analytic gradients, on an objective
rescaled to order one so that the solver's tolerance means the same at any return scale.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
from pydantic import Field

from kgfin.config import KgfinConfig, resolve_config
from kgfin.portfolio.errors import PortfolioInputError

__all__ = [
    "ALLOCATORS", "AllocatorConfig", "allocate", "equal_weight", "inverse_volatility", "markowitz",
    "min_variance", "project_simplex",
]

log = logging.getLogger(__name__)

Method = Literal["equal", "inverse_vol", "markowitz", "min_variance"]
ALLOCATORS: tuple[str, ...] = ("equal", "inverse_vol", "markowitz", "min_variance")


class AllocatorConfig(KgfinConfig):
    """Settings of the benchmark allocators."""

    lookback: int = Field(30, ge=2, description="trading days of history used for mu and Sigma")
    risk_aversion: float = Field(1.0, gt=0, description="gamma of the Markowitz objective")
    shrinkage: float = Field(0.0, ge=0, le=1, description="weight of diag(Sigma) in the covariance (0: sample)")
    tol: float = Field(1e-12, gt=0, description="SLSQP tolerance on the rescaled objective")
    max_iter: int = Field(500, ge=1, description="SLSQP iteration limit")


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto ``{w >= 0, sum(w) = 1}`` (sort-based, exact).

    >>> project_simplex(np.array([0.5, 0.8, -1.0])).round(6).tolist()
    [0.35, 0.65, 0.0]
    """
    v = np.asarray(v, dtype=float)
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    k = np.flatnonzero(u - css / np.arange(1, v.size + 1) > 0)[-1]
    return np.maximum(v - css[k] / (k + 1), 0.0)


def equal_weight(n: int) -> np.ndarray:
    """``1 / n`` each."""
    if n < 1:
        raise PortfolioInputError("equal_weight: need at least one asset")
    return np.full(n, 1.0 / n)


def _window(returns: np.ndarray) -> np.ndarray:
    r = np.asarray(returns, dtype=float)
    if r.ndim != 2 or r.shape[0] < 2 or r.shape[1] < 1:
        raise PortfolioInputError(f"need a look-back window (L >= 2, N >= 1) of returns, got shape {r.shape}")
    if not np.isfinite(r).all():
        raise PortfolioInputError("look-back window has missing or infinite returns")
    return r


def inverse_volatility(returns: np.ndarray) -> np.ndarray:
    """Weights proportional to ``1 / std`` over the window (L, N); zero-volatility assets
    share the whole portfolio equally."""
    sd = _window(returns).std(axis=0, ddof=1)
    if (sd <= 0).any():
        w = (sd <= 0).astype(float)
        return w / w.sum()
    w = 1.0 / sd
    return w / w.sum()


def _covariance(returns: np.ndarray, shrinkage: float) -> np.ndarray:
    cov = np.atleast_2d(np.cov(returns, rowvar=False, ddof=1))
    return (1.0 - shrinkage) * cov + shrinkage * np.diag(np.diag(cov)) if shrinkage else cov


def _solve_qp(
    quad: np.ndarray, lin: np.ndarray, cfg: AllocatorConfig, what: str, start: np.ndarray | None = None,
) -> np.ndarray:
    """``min_w 0.5 w'Q w - c'w`` over the simplex by SLSQP, from ``start`` (default equal weights)."""
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    n = lin.size
    if n == 1:
        return np.ones(1)
    scale = max(float(np.abs(np.diag(quad)).mean()), float(np.abs(lin).mean()), 1e-300)
    q, c = quad / scale, lin / scale
    x0 = np.full(n, 1.0 / n) if start is None else project_simplex(np.asarray(start, dtype=float))
    if x0.shape != (n,):
        raise PortfolioInputError(f"{what}: start has shape {x0.shape}, expected ({n},)")

    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        qw = q @ w
        return 0.5 * w @ qw - c @ w, qw - c

    # Threaded BLAS only slows these small dense problems down (badly on a busy machine).
    with threadpool_limits(limits=1, user_api="blas"):
        res = minimize(
            fun, x0, jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * n,
            constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}],
            options={"ftol": cfg.tol, "maxiter": cfg.max_iter},
        )
    if not res.success:
        log.warning("%s: SLSQP did not converge (%s); using its last iterate", what, res.message)
    return _polish(q, c, project_simplex(res.x))


def _polish(q: np.ndarray, c: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Refine SLSQP's answer by solving the KKT system on its support exactly.

    On the support S the optimum solves ``[Q_SS 1; 1' 0] [w_S; nu] = [c_S; 1]``; the
    refined weights are kept only if they are feasible and no worse than ``w``.
    """
    held = w > 1e-9
    k = int(held.sum())
    kkt = np.zeros((k + 1, k + 1))
    kkt[:k, :k] = q[np.ix_(held, held)]
    kkt[:k, k] = kkt[k, :k] = 1.0
    sol = np.linalg.lstsq(kkt, np.r_[c[held], 1.0], rcond=None)[0]
    if not np.isfinite(sol).all() or sol[:k].min() < 0:
        return w
    cand = np.zeros_like(w)
    cand[held] = sol[:k] / sol[:k].sum()

    def obj(v: np.ndarray) -> float:
        return 0.5 * v @ q @ v - c @ v

    return cand if obj(cand) <= obj(w) + 1e-14 * max(1.0, abs(obj(w))) else w


def markowitz(
    returns: np.ndarray, config: AllocatorConfig | None = None, start: np.ndarray | None = None, **overrides: Any,
) -> np.ndarray:
    """Long-only, fully invested mean-variance weights: ``max w'mu - (gamma/2) w'Sigma w``.

    ``start``: initial weights for the solver (a warm start, e.g. yesterday's weights).
    """
    cfg = resolve_config(AllocatorConfig, config, overrides)
    r = _window(returns)
    return _solve_qp(cfg.risk_aversion * _covariance(r, cfg.shrinkage), r.mean(axis=0), cfg, "markowitz", start)


def min_variance(
    returns: np.ndarray, config: AllocatorConfig | None = None, start: np.ndarray | None = None, **overrides: Any,
) -> np.ndarray:
    """Long-only, fully invested minimum-variance weights: ``min w'Sigma w``."""
    cfg = resolve_config(AllocatorConfig, config, overrides)
    r = _window(returns)
    return _solve_qp(2.0 * _covariance(r, cfg.shrinkage), np.zeros(r.shape[1]), cfg, "min_variance", start)


def allocate(
    method: Method, returns: np.ndarray, config: AllocatorConfig | None = None, start: np.ndarray | None = None,
    **overrides: Any,
) -> np.ndarray:
    """Weights of ``method`` (one of :data:`ALLOCATORS`) from a look-back window (L, N)."""
    if method == "equal":
        return equal_weight(_window(returns).shape[1])
    if method == "inverse_vol":
        return inverse_volatility(returns)
    if method == "markowitz":
        return markowitz(returns, config, start, **overrides)
    if method == "min_variance":
        return min_variance(returns, config, start, **overrides)
    raise PortfolioInputError(f"unknown allocator {method!r}; choose one of {ALLOCATORS}")
