"""The four relation networks of the synthetic market and how they evolve.

* :class:`SupplyNetwork`: directed supplier -> customer links with monthly dollar values;
  customers are drawn by sector affinity and size; links churn and values drift.
* :class:`Boards`: director seats with tenure; a share of new seats go to directors
  already sitting on a related board (same sector or any), creating interlocks.
* :class:`Funds`: mutual funds with sector tilts; weights drift with returns and a
  share of holdings turns over each month.
* :func:`draw_patents`: monthly patent grants whose CPC groups follow each firm's latent
  CPC profile; :func:`true_tech_peers`: the latent technical-competitor graph.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kgfin.data.synth.config import RelationsConfig
from kgfin.data.synth.universe import CPC_GROUPS, SUPPLY_AFFINITY, Universe

__all__ = ["Boards", "Funds", "SupplyNetwork", "draw_patents", "true_tech_peers"]


class SupplyNetwork:
    """Active supply links: arrays of supplier, customer and monthly value (USD)."""

    def __init__(self, uni: Universe, cfg: RelationsConfig, rng: np.random.Generator):
        self.uni, self.cfg = uni, cfg
        size_z = uni.size_z()
        # Customer choice weights per supplier sector: affinity x size (static).
        w = SUPPLY_AFFINITY[:, uni.sector_idx] * np.exp(0.5 * size_z)[None, :]
        self._cum = np.cumsum(w, axis=1)  # (sectors, N): cumulative customer weights
        self._out_propensity = np.exp(0.3 * size_z) * (SUPPLY_AFFINITY.sum(1)[uni.sector_idx] > 0)
        self._revenue = np.exp(uni.log_cap0) / 12.0
        n_links = min(int(round(cfg.supply_out_degree * uni.n)), uni.n * (uni.n - 1) // 3)
        self.supplier = np.empty(0, dtype=np.int64)
        self.customer = np.empty(0, dtype=np.int64)
        self.value = np.empty(0)
        self._add(n_links, rng)

    def _add(self, n: int, rng: np.random.Generator) -> None:
        """Add about ``n`` new links (duplicates and self-links are dropped)."""
        if n <= 0:
            return
        p = self._out_propensity / self._out_propensity.sum()
        sup = rng.choice(self.uni.n, size=n, p=p)
        u = rng.random(n)
        cust = np.empty(n, dtype=np.int64)
        sup_sector = self.uni.sector_idx[sup]
        for sector in np.unique(sup_sector):
            rows = sup_sector == sector
            cum = self._cum[sector]
            cust[rows] = np.searchsorted(cum, u[rows] * cum[-1], side="right")
        cust = np.minimum(cust, self.uni.n - 1)
        value = 0.05 * self._revenue[sup] * rng.lognormal(0.0, 0.8, size=n)
        keys_old = self.supplier * self.uni.n + self.customer
        keys_new = sup * self.uni.n + cust
        _, first = np.unique(keys_new, return_index=True)
        keep = np.zeros(n, dtype=bool)
        keep[first] = True
        keep &= (sup != cust) & ~np.isin(keys_new, keys_old)
        self.supplier = np.concatenate([self.supplier, sup[keep]])
        self.customer = np.concatenate([self.customer, cust[keep]])
        self.value = np.concatenate([self.value, value[keep]])

    def step(self, rng: np.random.Generator) -> None:
        """One month: values drift, a share of links ends, as many new ones form."""
        n_before = self.supplier.size
        self.value = self.value * rng.lognormal(0.0, self.cfg.supply_value_vol, size=n_before)
        alive = rng.random(n_before) >= self.cfg.supply_churn
        self.supplier, self.customer, self.value = self.supplier[alive], self.customer[alive], self.value[alive]
        self._add(n_before - int(alive.sum()), rng)

    def matrix(self) -> sp.csr_matrix:
        """(N, N) monthly supply values, [supplier, customer]."""
        n = self.uni.n
        return sp.csr_matrix((self.value, (self.supplier, self.customer)), shape=(n, n))

    def frame(self, month: str) -> pd.DataFrame:
        order = np.lexsort((self.customer, self.supplier))
        t = self.uni.tickers
        return pd.DataFrame({
            "month": month,
            "supplier": t[self.supplier[order]],
            "customer": t[self.customer[order]],
            "value_usd": np.round(self.value[order], 2),
        })


class Boards:
    """Director seats with tenure (start, end); interlocks arise from multi-board directors."""

    def __init__(self, uni: Universe, cfg: RelationsConfig, rng: np.random.Generator, start: pd.Timestamp):
        self.uni, self.cfg = uni, cfg
        self.director: list[int] = []
        self.firm: list[int] = []
        self.start: list[np.datetime64] = []
        self.end: list[np.datetime64 | None] = []
        self._active_by_firm: dict[int, set[int]] = defaultdict(set)  # firm -> seat indices
        self._seats_of: dict[int, int] = defaultdict(int)  # director -> active seat count
        self._next_director = 0
        self._firms_by_sector = {s: np.flatnonzero(uni.sector_idx == s) for s in np.unique(uni.sector_idx)}
        lo, hi = cfg.board_size
        sizes = rng.integers(lo, hi + 1, size=uni.n)
        for f in rng.permutation(uni.n):
            for _ in range(sizes[f]):
                tenure_days = int(rng.integers(30, 3650))
                self._appoint(int(f), np.datetime64(start.date()) - np.timedelta64(tenure_days, "D"), rng)

    def _appoint(self, firm: int, day: np.datetime64, rng: np.random.Generator) -> None:
        director = None
        if rng.random() < self.cfg.interlock_share:
            same = self._firms_by_sector[self.uni.sector_idx[firm]]
            other = int(rng.choice(same)) if rng.random() < 0.5 else int(rng.integers(self.uni.n))
            on_board = {self.director[s] for s in self._active_by_firm[firm]}
            candidates = sorted(
                self.director[s] for s in self._active_by_firm[other]
                if self._seats_of[self.director[s]] < 3 and self.director[s] not in on_board
            )
            if other != firm and candidates:
                director = int(rng.choice(candidates))
        if director is None:
            director = self._next_director
            self._next_director += 1
        seat = len(self.director)
        self.director.append(director)
        self.firm.append(firm)
        self.start.append(day)
        self.end.append(None)
        self._active_by_firm[firm].add(seat)
        self._seats_of[director] += 1

    def step(self, days: pd.DatetimeIndex, rng: np.random.Generator) -> None:
        """One month: seats end at the hazard rate and are refilled the next day."""
        active = sorted(s for seats in self._active_by_firm.values() for s in seats)
        ending = [s for s in active if rng.random() < self.cfg.seat_hazard]
        for s in ending:
            day = np.datetime64(days[int(rng.integers(len(days)))].date())
            self.end[s] = day
            self._active_by_firm[self.firm[s]].discard(s)
            self._seats_of[self.director[s]] -= 1
            self._appoint(self.firm[s], day + np.timedelta64(1, "D"), rng)

    def interlocks(self, first: pd.Timestamp, last: pd.Timestamp) -> sp.csr_matrix:
        """(N, N) number of directors seated on both boards at some time in [first, last]."""
        start = np.array(self.start, dtype="datetime64[D]")
        end = np.array([e if e is not None else np.datetime64("9999-12-31") for e in self.end], dtype="datetime64[D]")
        on = (start <= np.datetime64(last.date())) & (end >= np.datetime64(first.date()))
        d = np.array(self.director)[on]
        f = np.array(self.firm)[on]
        inc = sp.csr_matrix((np.ones(d.size), (d, f)), shape=(self._next_director, self.uni.n))
        inc.data[:] = 1.0  # a director seated twice on one board in the window counts once
        shared = (inc.T @ inc).tocsr()
        shared.setdiag(0)
        shared.eliminate_zeros()
        return shared

    def frame(self) -> pd.DataFrame:
        t = self.uni.tickers
        df = pd.DataFrame({
            "director_id": [f"D{d:06d}" for d in self.director],
            "ticker": t[np.array(self.firm)],
            "start": pd.to_datetime(np.array(self.start, dtype="datetime64[D]")),
            "end": pd.to_datetime(np.array([e if e is not None else np.datetime64("NaT") for e in self.end],
                                           dtype="datetime64[D]")),
        })
        return df.sort_values(["director_id", "start", "ticker"], ignore_index=True)


class Funds:
    """Mutual funds with sector tilts and monthly rebalancing."""

    def __init__(self, uni: Universe, cfg: RelationsConfig, rng: np.random.Generator):
        self.uni, self.cfg = uni, cfg
        n_funds = max(12, int(round(cfg.funds_per_company * uni.n)))
        n_sectors = int(uni.sector_idx.max()) + 1
        self.tilt = rng.dirichlet(np.full(n_sectors, 0.5), size=n_funds)
        lo, hi = cfg.fund_size
        hi = max(2, min(hi, uni.n // 2))
        lo = min(lo, hi)
        self.holdings: list[np.ndarray] = []
        self.weights: list[np.ndarray] = []
        for f in range(n_funds):
            k = int(rng.integers(lo, hi + 1))
            firms = self._pick(f, k, np.empty(0, dtype=np.int64), rng)
            w = np.exp(0.5 * uni.log_cap0[firms] - 0.5 * uni.log_cap0.max()) * rng.lognormal(0, 0.3, size=k)
            self.holdings.append(firms)
            self.weights.append(w / w.sum())

    def _pick(self, fund: int, k: int, exclude: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        p = self.tilt[fund][self.uni.sector_idx] * np.exp(0.4 * self.uni.size_z())
        p[exclude] = 0.0
        k = min(k, int((p > 0).sum()))
        return np.sort(rng.choice(self.uni.n, size=k, replace=False, p=p / p.sum()))

    def step(self, monthly_ret: np.ndarray, rng: np.random.Generator) -> None:
        """One month: weights drift with returns, a share of holdings is replaced."""
        for f in range(len(self.holdings)):
            firms, w = self.holdings[f], self.weights[f] * (1.0 + monthly_ret[self.holdings[f]])
            sell = rng.random(firms.size) < self.cfg.fund_turnover
            if sell.any():
                new = self._pick(f, int(sell.sum()), firms, rng)
                firms = np.concatenate([firms[~sell], new])
                w = np.concatenate([w[~sell], np.full(new.size, w[~sell].mean() if (~sell).any() else 1.0)])
                order = np.argsort(firms)
                firms, w = firms[order], w[order]
            self.holdings[f], self.weights[f] = firms, w / w.sum()

    def matrix(self) -> sp.csr_matrix:
        """(F, N) portfolio weights."""
        rows = np.concatenate([np.full(h.size, f) for f, h in enumerate(self.holdings)])
        cols = np.concatenate(self.holdings)
        return sp.csr_matrix((np.concatenate(self.weights), (rows, cols)), shape=(len(self.holdings), self.uni.n))

    def frame(self, month: str) -> pd.DataFrame:
        t = self.uni.tickers
        return pd.DataFrame({
            "month": month,
            "fund_id": np.concatenate([np.full(h.size, f"F{f:05d}") for f, h in enumerate(self.holdings)]),
            "ticker": t[np.concatenate(self.holdings)],
            "weight": np.round(np.concatenate(self.weights), 8),
        })


def draw_patents(
    uni: Universe, rate: float, days: pd.DatetimeIndex, first_id: int, rng: np.random.Generator
) -> pd.DataFrame:
    """One month of grants: Poisson counts per firm, 1-3 distinct CPC groups each from the firm's profile.

    Groups are drawn without replacement with probabilities from the firm's latent CPC
    profile, vectorised by the Gumbel top-k trick (argsort of log p + Gumbel noise).
    """
    counts = rng.poisson(rate * uni.patent_rate)
    firms = np.repeat(np.arange(uni.n), counts)  # (P,)
    n_pat = firms.size
    day_idx = rng.integers(len(days), size=n_pat)
    n_groups = rng.choice([1, 2, 3], size=n_pat, p=[0.5, 0.35, 0.15])
    with np.errstate(divide="ignore"):
        keys = np.log(uni.cpc_profile[firms]) + rng.gumbel(size=(n_pat, len(CPC_GROUPS)))  # (P, G)
    top = np.argsort(-keys, axis=1)[:, :3]  # (P, 3): groups in draw order
    take = np.arange(3)[None, :] < n_groups[:, None]  # (P, 3)
    pat = np.broadcast_to(np.arange(n_pat)[:, None], take.shape)[take]
    return pd.DataFrame({
        "patent_id": [f"P{first_id + k:08d}" for k in pat],
        "ticker": uni.tickers[firms[pat]],
        "grant_date": days.values[day_idx[pat]],
        "cpc_group": np.array(CPC_GROUPS)[top[take]],
    })


def true_tech_peers(uni: Universe, k: int, min_similarity: float, chunk: int = 1000) -> sp.csr_matrix:
    """(N, N) latent technical similarity: each firm's top-``k`` CPC-profile correlations.

    Symmetrised (a pair kept by either firm is kept for both). Computed in row chunks so
    it works for large universes without an all-pairs matrix in memory.
    """
    x = uni.cpc_profile - uni.cpc_profile.mean(axis=1, keepdims=True)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    rows, cols, vals = [], [], []
    for lo in range(0, uni.n, chunk):
        sim = x[lo:lo + chunk] @ x.T  # (chunk, N) correlations
        idx = np.arange(lo, min(lo + chunk, uni.n))
        sim[np.arange(idx.size), idx] = -np.inf
        top = np.argpartition(-sim, kth=min(k, uni.n - 2), axis=1)[:, :k]
        v = np.take_along_axis(sim, top, axis=1)
        keep = v >= min_similarity
        rows.append(np.repeat(idx, k)[keep.ravel()])
        cols.append(top.ravel()[keep.ravel()])
        vals.append(v.ravel()[keep.ravel()])
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    m = sp.csr_matrix((v, (r, c)), shape=(uni.n, uni.n))
    return m.maximum(m.T).tocsr()
