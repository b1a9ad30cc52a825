"""Rolling OLS factor loadings for a whole panel of stocks at once.

For every stock n and every day d the regression

    y[s, n] = a[d, n] + x[s] . b[d, n] + e[s, n],    s in [max(0, d - window), d - 1]

is fitted on the stock's non-missing days in the window *strictly before* d, so the
loadings applied on day d never see day d or anything later. A fit needs at least
``min_obs`` observations; until then (and whenever a stock has fewer valid days in its
window) the outputs are NaN. At the start of the sample the window expands until it
holds ``window`` rows, as statsmodels' ``RollingOLS(..., expanding=True)`` does; the fit
applied on day d equals ``RollingOLS(..., missing="drop")`` params at row d - 1.

How it is vectorised: the window sums of the cross-products ``X'X``, ``X'y`` and ``y'y``
come from cumulative sums over time (one pass for a whole block of stocks), and the small
(K+1) x (K+1) normal equations are solved by a Cholesky factorisation written out
entry by entry, so that each step is one numpy operation over all (day, stock) pairs.
Stocks are processed in blocks (bounding memory). In a block without gaps every stock
shares one ``X'X`` per day; a block with a gapped stock sums each stock's own. Every result is
computed by the same element-wise operations whichever path a stock takes, so it does
not depend on the other stocks, nor on any data after the day it is applied to (not
even on whether a later day is missing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kgfin.market.returns import MarketInputError

__all__ = ["RollingFit", "rolling_ols"]

@dataclass(frozen=True)
class RollingFit:
    """Loadings applied on each day; row d was estimated from rows before d.

    Shapes: ``alpha`` (T, N) (zeros when fitted without a constant), ``beta`` (T, N, K),
    ``sigma`` (T, N) the residual standard deviation in the estimation window (degrees of
    freedom nobs - number of regressors), ``nobs`` (T, N) valid days in the window.
    """

    alpha: np.ndarray
    beta: np.ndarray
    sigma: np.ndarray
    nobs: np.ndarray

    def expected(self, x: np.ndarray, include_alpha: bool = False) -> np.ndarray:
        """Fitted values ``x[d] . beta[d, n]`` (+ ``alpha``) for factor rows ``x`` (T, K) -> (T, N)."""
        x = np.asarray(x, dtype=float)
        out = self.beta[:, :, 0] * x[:, 0, None]
        for k in range(1, x.shape[1]):
            out = out + self.beta[:, :, k] * x[:, k, None]
        return out + self.alpha if include_alpha else out


def _window_sum(a: np.ndarray, window: int) -> np.ndarray:
    """Sums of ``a`` (T, ...) over rows ``max(0, d - window) .. d - 1`` for every row d."""
    c = np.cumsum(a, axis=0)  # c[d] = a[0] + ... + a[d]
    out = np.empty_like(c)
    out[0] = 0
    out[1:] = c[:-1]
    if a.shape[0] > window + 1:  # with fewer rows every window still starts at row 0
        np.subtract(out[window + 1:], c[: a.shape[0] - window - 1], out=out[window + 1:])
    return out


def _cholesky_solve(a: dict[tuple[int, int], np.ndarray], b: list[np.ndarray]) -> list[np.ndarray]:
    """Solve ``A x = b`` for a stack of small symmetric positive-definite systems.

    ``a[(i, j)]`` (i >= j) holds entry (i, j) of every matrix, ``b[i]`` entry i of every
    right-hand side; all are arrays that broadcast together (for example (T, 1) matrices
    shared by (T, N) right-hand sides). Returns ``x`` as a list of arrays. Matrices that
    are not positive definite give NaN.
    """
    p = len(b)
    chol: dict[tuple[int, int], np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for j in range(p):
            d = a[(j, j)].copy()
            for k in range(j):
                d -= chol[(j, k)] * chol[(j, k)]
            d[~(d > 0)] = np.nan
            chol[(j, j)] = np.sqrt(d, out=d)
            inv = 1.0 / chol[(j, j)]
            for i in range(j + 1, p):
                s = a[(i, j)].copy()
                for k in range(j):
                    s -= chol[(i, k)] * chol[(j, k)]
                s *= inv
                chol[(i, j)] = s
        z: list[np.ndarray] = []
        for i in range(p):  # forward: L z = b
            s = np.array(b[i], dtype=float, copy=True)
            for k in range(i):
                s -= chol[(i, k)] * z[k]
            s /= chol[(i, i)]
            z.append(s)
        x: list[np.ndarray] = [np.empty(0)] * p
        for i in reversed(range(p)):  # backward: L' x = z
            s = z[i]
            for k in range(i + 1, p):
                s -= chol[(k, i)] * x[k]
            s /= chol[(i, i)]
            x[i] = s
    return x


def rolling_ols(
    y: np.ndarray, x: np.ndarray, window: int = 252, min_obs: int = 126, add_constant: bool = True,
    block: int = 16,
) -> RollingFit:
    """Rolling OLS of every column of ``y`` on ``x``, applied one day ahead.

    Shapes: ``y`` (T, N) with NaN for missing returns; ``x`` (T, K) with NaN for missing
    factor days (missing for every stock). Returns a :class:`RollingFit`; with
    ``add_constant=False`` the intercept is 0 and not estimated. Stocks are processed
    ``block`` at a time (each block vectorised), which bounds memory.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    if y.ndim != 2 or x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise MarketInputError(f"rolling_ols: need y (T, N) and x (T, K) with the same T, got {y.shape} and {x.shape}")
    if np.isinf(y).any() or np.isinf(x).any():
        raise MarketInputError("rolling_ols: infinite values in y or x")
    t_len, n = y.shape
    xc = np.column_stack([np.ones(t_len), x]) if add_constant else x
    p = xc.shape[1]
    if block < 1:
        raise MarketInputError(f"rolling_ols: block must be >= 1, got {block}")
    if p == 0 or not p < min_obs <= window:
        raise MarketInputError(
            f"rolling_ols: need regressors and {p} < min_obs <= window (min_obs={min_obs}, window={window})"
        )
    row_ok = np.isfinite(xc).all(axis=1)  # (T,)
    xc0 = np.where(row_ok[:, None], xc, 0.0)
    pairs = [(i, j) for i in range(p) for j in range(i + 1)]
    shared = {ij: _window_sum(xc0[:, ij[0]] * xc0[:, ij[1]], window)[:, None] for ij in pairs}  # (T, 1)

    params = np.full((p, t_len, n), np.nan)
    sigma = np.full((t_len, n), np.nan)
    nobs = np.zeros((t_len, n), dtype=np.int64)
    for start in range(0, n, block):  # blocks of stocks keep the working set small
        cols = slice(start, min(n, start + block))
        mask = np.isfinite(y[:, cols]) & row_ok[:, None]  # (T, B)
        y0 = np.where(mask, y[:, cols], 0.0)
        nb = _window_sum(mask.astype(np.int64), window)  # (T, B)
        xty = [_window_sum(xc0[:, i, None] * y0, window) for i in range(p)]  # P x (T, B)
        ssr = _window_sum(y0 * y0, window)  # y'y, then y'y - b'X'y
        full = (mask == row_ok[:, None]).all(axis=0)  # stocks with no gap of their own
        if full.all():
            sol = _cholesky_solve(shared, xty)
        else:
            m = mask.astype(float)
            own = {ij: _window_sum(m * (xc0[:, ij[0]] * xc0[:, ij[1]])[:, None], window) for ij in pairs}
            # a gap-free stock's own sums equal the shared ones bit for bit; either may be used
            sol = _cholesky_solve(own, xty)
        for i in range(p):
            params[i, :, cols] = sol[i]
            ssr -= sol[i] * xty[i]
        with np.errstate(invalid="ignore", divide="ignore"):
            sigma[:, cols] = np.sqrt(np.maximum(ssr, 0.0) / (nb - p))
        nobs[:, cols] = nb
    ok = nobs >= min_obs
    params[:, ~ok] = np.nan
    sigma[~ok] = np.nan
    k0 = 1 if add_constant else 0
    beta = np.moveaxis(params[k0:], 0, -1)
    alpha = params[0] if add_constant else np.zeros((t_len, n))
    return RollingFit(alpha=alpha, beta=beta, sigma=sigma, nobs=nobs)
