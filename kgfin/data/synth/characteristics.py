"""Monthly stock characteristics (the ~20 quantitative factors) and planted next-month alpha.

Characteristics known at the end of month m are either computed from the simulated
market (size, momentum, reversal, volatilities, max return, beta, news attention) or
follow persistent firm-level AR(1) processes (value, profitability, investment, ...).

The expected return of month m+1 mixes a factor part and a news part:

    alpha_i = (1 - rho_i) * factor_alpha * score_i  +  rho_i * news_alpha * tanh(sentiment_i)
              + ripple_drift * (month-m ripple shocks of firm i)

* ``score``: a fixed combination of standardised characteristics (``PREMIA``), scaled
  to unit cross-sectional standard deviation;
* ``sentiment``: signed magnitudes of month-m news about the firm, decayed by age at
  the month end (half-life ``news_halflife_days``);
* ``rho``: news relevance, high in the news-driven regime and for small firms:
  ``rho = sigmoid(-1.5 + 3 * regime - 0.8 * size_z)``. The regime is a two-state Markov
  chain; in the news regime firms get more soft news (visible as ``news_count_1m``);
* the ripple part: linked firms under-react, so part of a ripple shock arrives as drift over
  the next month (computed in :mod:`kgfin.data.synth.market` from the month's effects).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["CHARACTERISTICS", "PREMIA", "CharacteristicsModel"]

# Persistent characteristics: name -> (AR(1) persistence, transform of the latent z).
_LATENT = {
    "book_to_market": (0.97, lambda z: np.exp(-0.4 + 0.6 * z)),
    "earnings_yield": (0.95, lambda z: 0.05 + 0.04 * z),
    "dividend_yield": (0.98, lambda z: np.maximum(0.0, 0.02 + 0.015 * z)),
    "roe": (0.95, lambda z: 0.12 + 0.08 * z),
    "gross_profitability": (0.96, lambda z: 0.30 + 0.12 * z),
    "accruals": (0.80, lambda z: 0.03 * z),
    "asset_growth": (0.85, lambda z: 0.07 + 0.10 * z),
    "sales_growth": (0.85, lambda z: 0.06 + 0.09 * z),
    "leverage": (0.97, lambda z: np.exp(-0.5 + 0.5 * z)),
    "analyst_revisions": (0.50, lambda z: 0.02 * z),
    "short_interest": (0.90, lambda z: np.exp(-3.5 + 0.6 * z)),
}
_COMPUTED = (
    "size", "liquidity", "mom_12_1", "rev_1m", "vol_1m", "vol_3m", "max_ret_1m", "beta_12m", "news_count_1m",
)
CHARACTERISTICS: tuple[str, ...] = (*_COMPUTED, *_LATENT)

# Planted premia: weights of the standardised characteristics in the factor score.
PREMIA = {
    "book_to_market": 0.30, "mom_12_1": 0.30, "gross_profitability": 0.25, "asset_growth": -0.25,
    "analyst_revisions": 0.30, "rev_1m": -0.25, "vol_1m": -0.20,
}


def _zscore(x: np.ndarray) -> np.ndarray:
    """Cross-sectional z-score; NaN stays NaN (all NaN gives all NaN)."""
    if np.isnan(x).all():
        return x.copy()
    mu, sd = np.nanmean(x), np.nanstd(x)
    return (x - mu) / sd if sd > 0 else np.zeros_like(x)


class CharacteristicsModel:
    """Keeps the state needed to compute month-end characteristics and next-month alpha."""

    def __init__(self, n: int, sector_idx: np.ndarray, rng: np.random.Generator, missing_rate: float = 0.03):
        self.n = n
        self.missing_rate = missing_rate
        n_sectors = int(sector_idx.max()) + 1
        sector_tilt = rng.normal(0, 0.5, size=(n_sectors, len(_LATENT)))
        self.mu = sector_tilt[sector_idx] + rng.normal(0, 0.7, size=(n, len(_LATENT)))
        self.z = self.mu + rng.normal(0, 0.5, size=(n, len(_LATENT)))
        self.phi = np.array([p for p, _ in _LATENT.values()])
        self.daily: list[np.ndarray] = []  # recent daily returns, (days, N) blocks
        self.daily_mkt: list[np.ndarray] = []
        self.monthly: list[np.ndarray] = []  # monthly returns, newest last

    def month_end(
        self, month: str, tickers: np.ndarray, daily_ret: np.ndarray, mkt_ret: np.ndarray,
        log_cap: np.ndarray, news_count: np.ndarray, rng: np.random.Generator,
    ) -> pd.DataFrame:
        """Characteristics known at the end of ``month``; ``daily_ret`` is (days, N)."""
        eps = rng.standard_normal(self.z.shape)
        self.z = self.mu + self.phi * (self.z - self.mu) + np.sqrt(1 - self.phi**2) * 0.6 * eps
        self.daily.append(daily_ret)
        self.daily_mkt.append(mkt_ret)
        self.monthly.append(np.prod(1 + daily_ret, axis=0) - 1)
        self.daily, self.daily_mkt, self.monthly = self.daily[-12:], self.daily_mkt[-12:], self.monthly[-13:]

        cols: dict[str, np.ndarray] = {"size": log_cap}
        cols["liquidity"] = 0.8 * _zscore(log_cap) + rng.normal(0, 0.5, size=self.n)
        if len(self.monthly) >= 13:
            cols["mom_12_1"] = np.prod(1 + np.array(self.monthly[-13:-1]), axis=0) - 1
        else:
            cols["mom_12_1"] = np.full(self.n, np.nan)
        cols["rev_1m"] = self.monthly[-1]
        cols["vol_1m"] = daily_ret.std(axis=0, ddof=1)
        last3 = np.concatenate(self.daily[-3:]) if len(self.daily) >= 3 else None
        cols["vol_3m"] = last3.std(axis=0, ddof=1) if last3 is not None else np.full(self.n, np.nan)
        cols["max_ret_1m"] = daily_ret.max(axis=0)
        hist = np.concatenate(self.daily)
        mkt = np.concatenate(self.daily_mkt)
        if hist.shape[0] >= 126:
            mc = mkt - mkt.mean()
            cols["beta_12m"] = (mc @ (hist - hist.mean(axis=0))) / (mc @ mc)
        else:
            cols["beta_12m"] = np.full(self.n, np.nan)
        cols["news_count_1m"] = news_count.astype(float)
        for k, (name, (_, transform)) in enumerate(_LATENT.items()):
            values = transform(self.z[:, k])
            values = np.where(rng.random(self.n) < self.missing_rate, np.nan, values)
            cols[name] = values
        frame = pd.DataFrame({"month": month, "ticker": tickers})
        for name in CHARACTERISTICS:
            frame[name] = cols[name]
        return frame

    @staticmethod
    def factor_score(chars: pd.DataFrame) -> np.ndarray:
        """Planted factor score (unit cross-sectional std); missing characteristics count as 0."""
        score = np.zeros(len(chars))
        for name, w in PREMIA.items():
            z = _zscore(chars[name].to_numpy(dtype=float))
            score += w * np.nan_to_num(z)
        sd = score.std()
        return score / sd if sd > 0 else score
