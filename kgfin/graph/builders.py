"""Relation builders: one function per relation, each point in time for month M.

Every builder takes a raw table (as loaded by :mod:`kgfin.data`), a month ``'YYYY-MM'``
and a :class:`~kgfin.graph.config.GraphConfig`, reads only facts known by the end of M,
and returns a DataFrame with the columns in :data:`EDGE_COLUMNS` (company-company edges)
or the raw bipartite facts (director seats, fund holdings, CPC portfolios).

Undirected relations are returned once per pair with ``source < target`` (by ticker);
SUPPLIES keeps its direction (supplier -> customer). ``weight`` is the relation's
normalised strength in [0, 1] that the interaction measure μ uses (``docs/graph.md``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kgfin.data.calendar import add_months, month_bounds
from kgfin.errors import KgfinError
from kgfin.graph.config import GraphConfig

__all__ = [
    "CO_HELD", "CPC_COLUMNS", "EDGE_COLUMNS", "HOLDING_COLUMNS", "RELATIONS", "SEAT_COLUMNS",
    "SHARES_DIRECTOR", "SUPPLIES", "TECH_SIMILAR", "co_held", "cpc_portfolio", "director_seats",
    "empty_edges", "fund_holdings", "shares_director", "supplies", "tech_similar",
]

SUPPLIES = "SUPPLIES"
SHARES_DIRECTOR = "SHARES_DIRECTOR"
CO_HELD = "CO_HELD"
TECH_SIMILAR = "TECH_SIMILAR"
RELATIONS: tuple[str, ...] = (SUPPLIES, SHARES_DIRECTOR, CO_HELD, TECH_SIMILAR)

EDGE_COLUMNS: dict[str, list[str]] = {
    SUPPLIES: ["source", "target", "value_usd", "weight", "reverse_weight"],
    SHARES_DIRECTOR: ["source", "target", "count", "weight"],
    CO_HELD: ["source", "target", "funds", "overlap", "weight"],
    TECH_SIMILAR: ["source", "target", "similarity", "weight"],
}
SEAT_COLUMNS = ["director_id", "ticker"]
HOLDING_COLUMNS = ["fund_id", "ticker", "weight"]
CPC_COLUMNS = ["ticker", "cpc_group", "patents", "share"]

OVERLAP_DECIMALS = 12  # CO_HELD overlaps are rounded to this many decimals before ranking (see co_held)
SIMILARITY_DECIMALS = 12  # TECH_SIMILAR correlations likewise (see tech_similar)
DENSE_LIMIT = 25_000_000  # firms x CPC groups up to which TECH_SIMILAR uses dense products (200 MB)


def _require(frame: pd.DataFrame, columns: list[str], table: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KgfinError(f"table {table}: missing column(s) {missing} (has {list(frame.columns)})")


def empty_edges(relation: str) -> pd.DataFrame:
    """An empty edge table of ``relation`` with its columns."""
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("source", "target") else float)
                         for c in EDGE_COLUMNS[relation]})


def _codes(tickers: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes in ticker order (so ties broken by code are broken by ticker) and the sorted tickers."""
    uniques, codes = np.unique(np.asarray(tickers, dtype=object).astype(str), return_inverse=True)
    return codes.astype(np.int64), uniques


def _rank_keep(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, k: int) -> np.ndarray:
    """Mask of entries among each row's ``k`` largest values (ties broken by the smaller column code)."""
    order = np.lexsort((cols, -vals, rows))
    r = rows[order]
    rank = np.arange(r.size) - np.searchsorted(r, r, side="left")
    keep = np.zeros(rows.size, dtype=bool)
    keep[order[rank < k]] = True
    return keep


def _topk_union(i: np.ndarray, j: np.ndarray, v: np.ndarray, k: int | None) -> np.ndarray:
    """Mask over undirected pairs (i, j): kept if j is among i's top ``k`` or i among j's."""
    if k is None or i.size == 0:
        return np.ones(i.size, dtype=bool)
    keep = _rank_keep(np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([v, v]), k)
    return keep[: i.size] | keep[i.size:]


def _undirected_frame(names: np.ndarray, i: np.ndarray, j: np.ndarray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Pairs as ``source < target`` rows, sorted."""
    a, b = names[i], names[j]
    swap = a > b
    src, dst = np.where(swap, b, a), np.where(swap, a, b)
    out = pd.DataFrame({"source": src, "target": dst, **columns})
    return out.sort_values(["source", "target"], ignore_index=True)


# --- SUPPLIES --------------------------------------------------------------------------------

def supplies(links: pd.DataFrame, month: str, cfg: GraphConfig | None = None) -> pd.DataFrame:
    """SUPPLIES edges of month M: supplier -> customer with the month's value.

    ``weight`` = value / customer's purchases from all suppliers in M (how much the customer
    depends on this supplier); ``reverse_weight`` = value / supplier's sales to all customers
    in M (how much the supplier depends on this customer). Both in [0, 1].
    """
    month_bounds(month)
    _require(links, ["month", "supplier", "customer", "value_usd"], "supply_links")
    m = links.loc[links["month"] == month, ["supplier", "customer", "value_usd"]]
    m = m.loc[m["supplier"] != m["customer"]]
    if m.empty:
        return empty_edges(SUPPLIES)
    m = m.groupby(["supplier", "customer"], as_index=False, sort=True)["value_usd"].sum()
    value = m["value_usd"].to_numpy(dtype=float)
    purchases = m.groupby("customer")["value_usd"].transform("sum").to_numpy(dtype=float)
    sales = m.groupby("supplier")["value_usd"].transform("sum").to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(purchases > 0, value / purchases, 0.0)
        reverse = np.where(sales > 0, value / sales, 0.0)
    return pd.DataFrame({
        "source": m["supplier"].astype(str).to_numpy(), "target": m["customer"].astype(str).to_numpy(),
        "value_usd": value, "weight": weight, "reverse_weight": reverse,
    })


# --- SHARES_DIRECTOR -------------------------------------------------------------------------

def director_seats(seats: pd.DataFrame, month: str) -> pd.DataFrame:
    """Seats held at some time during M: start <= last day of M and (end empty or end >= first day of M).

    A seat starting after M is not known at the end of M and never counts; an end date after
    M is treated exactly like an open seat, so nothing later than M changes the answer.
    """
    first, last = month_bounds(month)
    _require(seats, ["director_id", "ticker", "start", "end"], "board_seats")
    start = pd.to_datetime(seats["start"])
    end = pd.to_datetime(seats["end"])
    on = (start <= last) & (end.isna() | (end >= first))
    out = seats.loc[on, ["director_id", "ticker"]].astype(str).drop_duplicates()
    return out.sort_values(["director_id", "ticker"], ignore_index=True)


def shares_director(seats: pd.DataFrame, month: str, cfg: GraphConfig | None = None) -> pd.DataFrame:
    """SHARES_DIRECTOR edges of M: number of directors seated on both boards during M.

    ``weight`` = min(1, count / ``cfg.director_saturation``).
    """
    cfg = cfg or GraphConfig()
    on = director_seats(seats, month)
    if on.empty:
        return empty_edges(SHARES_DIRECTOR)
    d_codes, _ = _codes(on["director_id"])
    f_codes, firms = _codes(on["ticker"])
    inc = sp.csr_matrix((np.ones(len(on)), (d_codes, f_codes)), shape=(d_codes.max() + 1, firms.size))
    shared = sp.triu((inc.T @ inc).tocsr(), k=1).tocoo()  # (N, N) directors on both boards, i < j
    count = shared.data.astype(np.int64)
    return _undirected_frame(firms, shared.row, shared.col, {
        "count": count, "weight": np.minimum(1.0, count / cfg.director_saturation),
    })


# --- CO_HELD ---------------------------------------------------------------------------------

def fund_holdings(holdings: pd.DataFrame, month: str) -> pd.DataFrame:
    """The fund portfolios reported for month M (known at its end): fund_id, ticker, weight."""
    month_bounds(month)
    _require(holdings, ["month", "fund_id", "ticker", "weight"], "fund_holdings")
    m = holdings.loc[holdings["month"] == month, ["fund_id", "ticker", "weight"]]
    m = m.astype({"fund_id": str, "ticker": str, "weight": float})
    m = m.groupby(["fund_id", "ticker"], as_index=False, sort=True)["weight"].sum()
    return m.reset_index(drop=True)


def co_held(holdings: pd.DataFrame, month: str, cfg: GraphConfig | None = None, chunk_pairs: int = 2_000_000) -> pd.DataFrame:
    """CO_HELD edges of M: firms held by common funds.

    For each pair: ``funds`` = number of funds holding both, ``overlap`` = Σ_f min(w_fi, w_fj).
    Pairs with at least ``cfg.co_held_min_funds`` funds are candidates; each firm keeps its
    ``cfg.co_held_top_k`` partners by overlap (a pair kept by either firm is kept).
    ``weight`` = overlap / the largest overlap among the month's kept pairs.

    Overlaps are rounded to :data:`OVERLAP_DECIMALS` decimals before ranking: sums that are
    equal in exact arithmetic (0.1 + 0.2 and 0.3) differ in the last floating-point digit
    depending on summation order, and rounding makes them equal, so that the tie falls to
    the ticker rule instead of to the order the funds were added in.
    """
    cfg = cfg or GraphConfig()
    h = fund_holdings(holdings, month)
    h = h.loc[h["weight"] > 0]
    if h.empty:
        return empty_edges(CO_HELD)
    f_codes, _ = _codes(h["fund_id"])
    t_codes, firms = _codes(h["ticker"])
    w = h["weight"].to_numpy(dtype=float)
    n = firms.size
    order = np.argsort(f_codes, kind="stable")
    f_codes, t_codes, w = f_codes[order], t_codes[order], w[order]
    bounds = np.flatnonzero(np.diff(np.r_[-1, f_codes, f_codes.max() + 1]))
    overlap = sp.csr_matrix((n, n))
    funds = sp.csr_matrix((n, n))
    rows, cols, vals = [], [], []
    pending = 0

    def flush() -> None:
        nonlocal overlap, funds, rows, cols, vals, pending
        if rows:
            r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
            overlap = overlap + sp.csr_matrix((v, (r, c)), shape=(n, n))
            funds = funds + sp.csr_matrix((np.ones(r.size), (r, c)), shape=(n, n))
        rows, cols, vals, pending = [], [], [], 0

    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if hi - lo < 2:
            continue
        firms_f, w_f = t_codes[lo:hi], w[lo:hi]
        a, b = np.triu_indices(hi - lo, k=1)
        i, j = np.minimum(firms_f[a], firms_f[b]), np.maximum(firms_f[a], firms_f[b])
        rows.append(i)
        cols.append(j)
        vals.append(np.minimum(w_f[a], w_f[b]))
        pending += a.size
        if pending >= chunk_pairs:
            flush()
    flush()
    ov, fc = overlap.tocoo(), funds.tocsr()
    if ov.nnz == 0:
        return empty_edges(CO_HELD)
    count = np.asarray(fc[ov.row, ov.col]).ravel().astype(np.int64)
    cand = count >= cfg.co_held_min_funds
    i, j, v, count = ov.row[cand], ov.col[cand], np.round(ov.data[cand], OVERLAP_DECIMALS), count[cand]
    keep = _topk_union(i, j, v, cfg.co_held_top_k)
    i, j, v, count = i[keep], j[keep], v[keep], count[keep]
    top = v.max() if v.size else 1.0
    return _undirected_frame(firms, i, j, {"funds": count, "overlap": v, "weight": v / top})


# --- TECH_SIMILAR ----------------------------------------------------------------------------

def _window(patents: pd.DataFrame, month: str, window_months: int) -> pd.DataFrame:
    _, last = month_bounds(month)
    _, before = month_bounds(add_months(month, -window_months))
    _require(patents, ["patent_id", "ticker", "grant_date", "cpc_group"], "patents")
    grant = pd.to_datetime(patents["grant_date"])
    in_window = (grant > before) & (grant <= last)
    out = patents.loc[in_window, ["patent_id", "ticker", "cpc_group"]].astype(str)
    return out.drop_duplicates()


def cpc_portfolio(patents: pd.DataFrame, month: str, cfg: GraphConfig | None = None) -> pd.DataFrame:
    """Each firm's CPC groups over patents granted in the trailing window ending with M.

    ``patents`` = number of the firm's patents in the group; ``share`` = that count over the
    firm's (patent, group) assignments in the window (the firm's CPC share vector).
    """
    cfg = cfg or GraphConfig()
    p = _window(patents, month, cfg.tech_window_months)
    counts = p.groupby(["ticker", "cpc_group"], sort=True).size().rename("patents").reset_index()
    counts["patents"] = counts["patents"].astype(np.int64)
    counts["share"] = counts["patents"] / counts.groupby("ticker")["patents"].transform("sum")
    return counts[CPC_COLUMNS]


def tech_similar(patents: pd.DataFrame, month: str, cfg: GraphConfig | None = None, chunk: int = 1000) -> pd.DataFrame:
    """TECH_SIMILAR edges of M: Pearson correlation of the firms' CPC share vectors (Lee et al. 2019).

    Vectors span every CPC group appearing among eligible firms' patents in the window (firms
    with at least ``cfg.tech_min_patents`` patents there). Pairs with correlation >=
    ``cfg.tech_threshold`` are kept, at most ``cfg.tech_top_k`` per firm (a pair kept by either
    firm is kept). ``weight`` = max(0, similarity). Computed in row chunks, never all pairs at once.

    Correlations are rounded to :data:`SIMILARITY_DECIMALS` decimals before the threshold and the
    ranking, as CO_HELD overlaps are: two firms whose share vectors are equal in exact arithmetic
    (1, 1, 3 patents and 3, 3, 9 over the same groups) correlate equally with a third, but the
    floating-point values differ in the last digits, which used to hand the top-k place to the
    later ticker instead of to the ticker rule.
    """
    cfg = cfg or GraphConfig()
    p = _window(patents, month, cfg.tech_window_months)
    n_pat = p.groupby("ticker")["patent_id"].nunique()
    eligible = n_pat.index[n_pat >= cfg.tech_min_patents]
    p = p.loc[p["ticker"].isin(eligible)]
    if p.empty:
        return empty_edges(TECH_SIMILAR)
    f_codes, firms = _codes(p["ticker"])
    g_codes, groups = _codes(p["cpc_group"])
    n, g = firms.size, groups.size
    if n < 2 or g < 2:
        return empty_edges(TECH_SIMILAR)
    x = sp.csr_matrix((np.ones(len(p)), (f_codes, g_codes)), shape=(n, g))
    x = sp.diags(1.0 / np.asarray(x.sum(axis=1)).ravel()) @ x  # (N, G) shares, rows sum to 1
    # Every share vector has mean 1/G: corr(i, j) = (x_i.x_j - 1/G) / (|x_i - 1/G| |x_j - 1/G|).
    norm = np.sqrt(np.maximum(np.asarray(x.multiply(x).sum(axis=1)).ravel() - 1.0 / g, 0.0))  # (N,)
    valid = norm > 1e-12  # a flat share vector has no correlation
    scale = np.where(valid, 1.0 / np.where(valid, norm, 1.0), 0.0)
    if n * g <= DENSE_LIMIT:  # few CPC groups: one dense product per chunk
        z = (x.toarray() - 1.0 / g) * scale[:, None]  # (N, G) centred, unit-length rows

        def block(lo: int, hi: int) -> np.ndarray:
            return z[lo:hi] @ z.T
    else:  # many groups: sparse products, centred afterwards
        xt = x.T.tocsc()

        def block(lo: int, hi: int) -> np.ndarray:
            return ((x[lo:hi] @ xt).toarray() - 1.0 / g) * scale[lo:hi, None] * scale[None, :]
    floor = -np.inf
    rows, cols, vals = [], [], []
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        corr = np.round(block(lo, hi), SIMILARITY_DECIMALS)  # (C, N) correlations
        corr[~valid[lo:hi], :] = floor
        corr[:, ~valid] = floor
        corr[np.arange(hi - lo), np.arange(lo, hi)] = floor
        ok = corr > floor
        if cfg.tech_threshold is not None:
            ok &= corr >= cfg.tech_threshold
        if cfg.tech_top_k is not None and cfg.tech_top_k < n - 1:
            # The k-th largest candidate per row bounds the set; exact ties are settled below.
            masked = np.where(ok, corr, floor)
            kth = -np.partition(-masked, cfg.tech_top_k - 1, axis=1)[:, cfg.tech_top_k - 1]
            ok &= masked >= kth[:, None]
        r, c = np.nonzero(ok)
        v = corr[r, c]
        if cfg.tech_top_k is not None:
            keep = _rank_keep(r, c, v, cfg.tech_top_k)
            r, c, v = r[keep], c[keep], v[keep]
        rows.append(r + lo)
        cols.append(c)
        vals.append(v)
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    i, j = np.minimum(r, c), np.maximum(r, c)
    key, first = np.unique(i * n + j, return_index=True)
    i, j, v = key // n, key % n, v[first]
    return _undirected_frame(firms, i, j, {"similarity": v, "weight": np.maximum(v, 0.0)})
