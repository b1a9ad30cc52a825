"""GraphSnapshot: the company knowledge graph of one month, and how to build it.

A snapshot holds the companies (sorted by ticker: the row/column order of μ), the typed
weighted company-company edges of :data:`~kgfin.graph.builders.RELATIONS`, and the raw
bipartite facts behind the projections (director seats, fund holdings, CPC portfolios).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kgfin.data.calendar import month_bounds
from kgfin.errors import KgfinError
from kgfin.graph import builders as b
from kgfin.graph.config import GraphConfig, MuConfig

if TYPE_CHECKING:
    import networkx as nx
    from torch_geometric.data import HeteroData

    from kgfin.data.loaders import MarketData

__all__ = ["GraphSnapshot", "SnapshotStats", "build_snapshot", "build_snapshots", "data_months"]

log = logging.getLogger(__name__)

_FACTS = {"seats": b.SEAT_COLUMNS, "holdings": b.HOLDING_COLUMNS, "cpc": b.CPC_COLUMNS}
_INT_COLUMNS = {"count", "funds", "patents"}
_STR_COLUMNS = {"source", "target", "ticker", "director_id", "fund_id", "cpc_group", "name", "sector"}


def _normalise(frame: pd.DataFrame, columns: list[str], keys: list[str], what: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KgfinError(f"GraphSnapshot {what}: missing column(s) {missing}")
    out = frame[columns].copy()
    for c in columns:
        if c in _STR_COLUMNS:
            out[c] = out[c].astype(str).astype(object)
        elif c in _INT_COLUMNS:
            out[c] = out[c].astype(np.int64)
        else:
            out[c] = out[c].astype(float)
    if out.duplicated(keys).any():
        row = int(np.flatnonzero(out.duplicated(keys).to_numpy())[0])
        raise KgfinError(f"GraphSnapshot {what}: duplicate key {out.iloc[row][keys].tolist()} (row {row})")
    return out.sort_values(keys, ignore_index=True)


@dataclass(frozen=True)
class SnapshotStats:
    """Size of a snapshot, as in the FinRipple paper's Table 6, plus the bipartite facts."""

    month: str
    companies: int
    edges: dict[str, int]
    pairs: int  # unordered company pairs linked by at least one relation
    share_1: float  # share of those pairs linked by exactly one relation type
    share_2: float
    share_3plus: float
    directors: int
    funds: int
    cpc_groups: int
    seats: int
    holdings: int

    @property
    def total_edges(self) -> int:
        return sum(self.edges.values())

    def as_dict(self) -> dict[str, Any]:
        """Flat dictionary (one column per relation) for tables."""
        out: dict[str, Any] = {"month": self.month, "companies": self.companies}
        out.update(self.edges)
        out.update(total_edges=self.total_edges, pairs=self.pairs, share_1=self.share_1, share_2=self.share_2,
                   share_3plus=self.share_3plus, directors=self.directors, funds=self.funds,
                   cpc_groups=self.cpc_groups, seats=self.seats, holdings=self.holdings)
        return out


@dataclass(eq=False)
class GraphSnapshot:
    """The company graph of one month.

    Attributes:
        month: ``'YYYY-MM'``.
        companies: ticker, name, sector; sorted by ticker (the order of :meth:`mu`).
        edges: relation -> DataFrame with the columns of :data:`~kgfin.graph.builders.EDGE_COLUMNS`.
        seats: director_id, ticker (seats held during the month).
        holdings: fund_id, ticker, weight (the month's fund reports).
        cpc: ticker, cpc_group, patents, share (patents in the trailing window).
        config: the GraphConfig it was built with (μ's rules included).
    """

    month: str
    companies: pd.DataFrame
    edges: dict[str, pd.DataFrame]
    seats: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=b.SEAT_COLUMNS))
    holdings: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=b.HOLDING_COLUMNS))
    cpc: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=b.CPC_COLUMNS))
    config: GraphConfig = field(default_factory=GraphConfig)

    def __post_init__(self) -> None:
        month_bounds(self.month)
        self.companies = _normalise(self.companies, ["ticker", "name", "sector"], ["ticker"], "companies")
        known = set(self.companies["ticker"])
        unknown_rel = set(self.edges) - set(b.RELATIONS)
        if unknown_rel:
            raise KgfinError(f"GraphSnapshot: unknown relation(s) {sorted(unknown_rel)} (known: {list(b.RELATIONS)})")
        edges = {}
        for rel in b.RELATIONS:
            frame = self.edges.get(rel)
            frame = b.empty_edges(rel) if frame is None else frame
            edges[rel] = _normalise(frame, b.EDGE_COLUMNS[rel], ["source", "target"], rel)
            if rel != b.SUPPLIES and (edges[rel]["source"] >= edges[rel]["target"]).any():
                raise KgfinError(f"GraphSnapshot {rel}: undirected pairs must have source < target")
        self.edges = edges
        for name, cols in _FACTS.items():
            setattr(self, name, _normalise(getattr(self, name), cols, cols[:2], name))
        for what, frame, cols in [*((rel, f, ["source", "target"]) for rel, f in self.edges.items()),
                                  *((n, getattr(self, n), ["ticker"]) for n in _FACTS)]:
            for c in cols:
                bad = ~frame[c].isin(known)
                if bad.any():
                    raise KgfinError(f"GraphSnapshot {what}: {c} {frame[c][bad].iloc[0]!r} is not a listed company")

    # --- basic views -----------------------------------------------------------------------

    @property
    def tickers(self) -> list[str]:
        """Company tickers in snapshot order (the rows and columns of :meth:`mu`)."""
        return self.companies["ticker"].tolist()

    @property
    def index(self) -> dict[str, int]:
        """Ticker -> position in :attr:`tickers`."""
        return {t: i for i, t in enumerate(self.tickers)}

    def edge_table(self) -> pd.DataFrame:
        """All company-company edges in one long table: relation, source, target, weight, attributes."""
        frames = [f.assign(relation=rel) for rel, f in self.edges.items() if len(f)]
        if not frames:
            return pd.DataFrame(columns=["relation", "source", "target", "weight"])
        out = pd.concat(frames, ignore_index=True)
        first = ["relation", "source", "target", "weight"]
        return out[first + [c for c in out.columns if c not in first]]

    # --- μ ---------------------------------------------------------------------------------

    def mu(self, rules: MuConfig | None = None) -> sp.csr_matrix:
        """The signed interaction measure μ_t as an (N, N) sparse matrix, [source, affected].

        μ[i, j] = Σ_r sign_r · weight_r · strength_r(i → j), the rules from ``rules`` (default:
        the snapshot's ``config.mu``). Strengths are the edges' ``weight`` in [0, 1]; symmetric
        relations give the same strength both ways; SUPPLIES gives supplier -> customer the
        customer's purchase share and customer -> supplier ``supplies_upstream`` x the supplier's
        sales share. The diagonal is zero. A ripple Z_j = Σ_i μ[i, j] Y_i is ``mu.T @ Y``.
        """
        rules = rules or self.config.mu
        n = len(self.companies)
        idx = self.index
        rows, cols, vals = [], [], []
        for rel, frame in self.edges.items():
            rule = getattr(rules, rel.lower())
            scale = rule.sign * rule.weight
            if scale == 0 or frame.empty:
                continue
            i = frame["source"].map(idx).to_numpy()
            j = frame["target"].map(idx).to_numpy()
            w = frame["weight"].to_numpy()
            rows += [i]
            cols += [j]
            vals += [scale * w]
            back = frame["reverse_weight"].to_numpy() * rules.supplies_upstream if rel == b.SUPPLIES else w
            rows += [j]
            cols += [i]
            vals += [scale * back]
        if not rows:
            return sp.csr_matrix((n, n))
        m = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
        m.sum_duplicates()
        m.eliminate_zeros()
        return m

    # --- statistics ------------------------------------------------------------------------

    def stats(self) -> SnapshotStats:
        """Nodes, edges per type and the share of linked pairs with 1, 2 or 3+ relation types."""
        index = pd.Index(self.companies["ticker"])
        n = len(index)
        keys = []
        for frame in self.edges.values():
            i = index.get_indexer(frame["source"]).astype(np.int64)
            j = index.get_indexer(frame["target"]).astype(np.int64)
            key = np.minimum(i, j) * n + np.maximum(i, j)
            keys.append(pd.unique(key))  # a relation counts a pair once (SUPPLIES may link it both ways)
        key = np.sort(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if key.size else np.zeros(0, np.int64)
        n_types = pd.Series(np.diff(np.r_[starts, key.size]))  # relation types per linked pair
        total = int(n_types.size)

        def share(mask: pd.Series) -> float:
            return float(mask.sum() / total) if total else 0.0

        return SnapshotStats(
            month=self.month, companies=len(self.companies),
            edges={rel: len(f) for rel, f in self.edges.items()}, pairs=total,
            share_1=share(n_types == 1), share_2=share(n_types == 2), share_3plus=share(n_types >= 3),
            directors=int(self.seats["director_id"].nunique()), funds=int(self.holdings["fund_id"].nunique()),
            cpc_groups=int(self.cpc["cpc_group"].nunique()), seats=len(self.seats), holdings=len(self.holdings),
        )

    # --- comparison ------------------------------------------------------------------------

    def differences(self, other: GraphSnapshot, rtol: float = 1e-12, atol: float = 0.0) -> list[str]:
        """What differs from ``other`` (empty when equal); floats compared with ``rtol``/``atol``."""
        out: list[str] = []
        if self.month != other.month:
            out.append(f"month {self.month} != {other.month}")
        if self.config != other.config:
            out.append("config differs")
        frames = [("companies", self.companies, other.companies),
                  *((rel, self.edges[rel], other.edges[rel]) for rel in b.RELATIONS),
                  *((n, getattr(self, n), getattr(other, n)) for n in _FACTS)]
        for name, x, y in frames:
            if len(x) != len(y):
                out.append(f"{name}: {len(x)} rows != {len(y)}")
                continue
            for c in x.columns:
                if x[c].dtype == float:
                    if not np.allclose(x[c].to_numpy(), y[c].to_numpy(dtype=float), rtol=rtol, atol=atol):
                        out.append(f"{name}.{c}: values differ")
                elif not (x[c].to_numpy() == y[c].to_numpy()).all():
                    out.append(f"{name}.{c}: values differ")
        return out

    def equals(self, other: GraphSnapshot, rtol: float = 1e-12, atol: float = 0.0) -> bool:
        """True when month, config, companies, edges and facts agree (floats to ``rtol``/``atol``)."""
        return not self.differences(other, rtol=rtol, atol=atol)

    # --- conversions -----------------------------------------------------------------------

    def to_networkx(self, bipartite: bool = False) -> nx.MultiDiGraph:
        """A MultiDiGraph of the companies (and, with ``bipartite``, directors, funds and CPC groups).

        Edge keys are relation names. SUPPLIES runs supplier -> customer; symmetric relations
        are added in both directions. Bipartite nodes are ``director:<id>``, ``fund:<id>`` and
        ``cpc:<group>`` with edges SITS_ON (director -> company), HOLDS (fund -> company, weight)
        and PATENTS_IN (company -> cpc, patents, share). Every node has a ``label``.
        """
        import networkx as nx

        g = nx.MultiDiGraph(month=self.month)
        for r in self.companies.itertuples(index=False):
            g.add_node(r.ticker, label="Company", name=r.name, sector=r.sector)
        for rel, frame in self.edges.items():
            attrs = [c for c in frame.columns if c not in ("source", "target")]
            for row in frame.itertuples(index=False):
                data = {a: getattr(row, a) for a in attrs}
                g.add_edge(row.source, row.target, key=rel, relation=rel, **data)
                if rel != b.SUPPLIES:
                    g.add_edge(row.target, row.source, key=rel, relation=rel, **data)
        if bipartite:
            for d, t in self.seats.itertuples(index=False):
                g.add_node(f"director:{d}", label="Director", id=d)
                g.add_edge(f"director:{d}", t, key="SITS_ON", relation="SITS_ON")
            for f, t, w in self.holdings.itertuples(index=False):
                g.add_node(f"fund:{f}", label="Fund", id=f)
                g.add_edge(f"fund:{f}", t, key="HOLDS", relation="HOLDS", weight=w)
            for t, c, n, s in self.cpc.itertuples(index=False):
                g.add_node(f"cpc:{c}", label="CPC", code=c)
                g.add_edge(t, f"cpc:{c}", key="PATENTS_IN", relation="PATENTS_IN", patents=n, share=s)
        return g

    def to_hetero_data(self, bipartite: bool = True) -> HeteroData:
        """A torch-geometric ``HeteroData``.

        Node type ``company`` (``ticker`` list, ``sector`` codes, ``num_nodes``); edge types
        ``(company, <relation lower-case>, company)`` with ``edge_index`` (2, E), ``edge_weight``
        (E,) and ``edge_attr`` (E, A) in the column order of ``edge_attr_names``; symmetric
        relations appear in both directions. With ``bipartite``: node types director, fund, cpc
        (``ids``) and edge types (director, sits_on, company), (fund, holds, company) with the
        weight and (company, patents_in, cpc) with the share as ``edge_weight``.
        """
        import torch
        from torch_geometric.data import HeteroData

        data = HeteroData()
        idx = self.index
        data["company"].num_nodes = len(self.companies)
        data["company"].ticker = self.tickers
        sectors, codes = np.unique(self.companies["sector"].to_numpy(dtype=str), return_inverse=True)
        data["company"].sector = torch.as_tensor(codes, dtype=torch.long)
        data["company"].sector_names = sectors.tolist()
        for rel, frame in self.edges.items():
            s = frame["source"].map(idx).to_numpy(dtype=np.int64)
            t = frame["target"].map(idx).to_numpy(dtype=np.int64)
            names = [c for c in frame.columns if c not in ("source", "target")]
            attr = frame[names].to_numpy(dtype=np.float32)
            if rel != b.SUPPLIES:
                s, t = np.concatenate([s, t]), np.concatenate([t, s])
                attr = np.concatenate([attr, attr])
            store = data["company", rel.lower(), "company"]
            store.edge_index = torch.as_tensor(np.stack([s, t]), dtype=torch.long).reshape(2, -1)
            store.edge_attr = torch.as_tensor(attr).reshape(-1, len(names))
            store.edge_weight = store.edge_attr[:, names.index("weight")]
            store.edge_attr_names = names
        if bipartite:
            for kind, frame, col, rel, w in (("director", self.seats, "director_id", "sits_on", None),
                                             ("fund", self.holdings, "fund_id", "holds", "weight")):
                ids, codes = np.unique(frame[col].to_numpy(dtype=str), return_inverse=True)
                data[kind].num_nodes = ids.size
                data[kind].ids = ids.tolist()
                comp = frame["ticker"].map(idx).to_numpy(dtype=np.int64)
                store = data[kind, rel, "company"]
                store.edge_index = torch.as_tensor(np.stack([codes, comp]), dtype=torch.long).reshape(2, -1)
                if w is not None:
                    store.edge_weight = torch.as_tensor(frame[w].to_numpy(dtype=np.float32))
            ids, codes = np.unique(self.cpc["cpc_group"].to_numpy(dtype=str), return_inverse=True)
            data["cpc"].num_nodes = ids.size
            data["cpc"].ids = ids.tolist()
            comp = self.cpc["ticker"].map(idx).to_numpy(dtype=np.int64)
            store = data["company", "patents_in", "cpc"]
            store.edge_index = torch.as_tensor(np.stack([comp, codes]), dtype=torch.long).reshape(2, -1)
            store.edge_weight = torch.as_tensor(self.cpc["share"].to_numpy(dtype=np.float32))
        return data


# --- building ----------------------------------------------------------------------------------

def data_months(market: MarketData) -> list[str]:
    """Months with monthly relation data (supply links or fund holdings), sorted."""
    months: set[str] = set()
    for table in (market.supply_links, market.fund_holdings):
        if table is not None:
            months.update(table["month"].astype(str).unique())
    return sorted(months)


def build_snapshot(market: MarketData, month: str, cfg: GraphConfig | None = None) -> GraphSnapshot:
    """Build month M's snapshot from a loaded data directory, using only facts known by the end of M.

    Tables absent from ``market`` leave their relation empty. Raises when M has no monthly
    relation data at all (neither supply links nor fund holdings), naming the months that do.
    """
    cfg = cfg or GraphConfig()
    month_bounds(month)
    available = data_months(market)
    if month not in available:
        span = f"{available[0]}..{available[-1]}" if available else "no months"
        raise KgfinError(f"no supply_links or fund_holdings rows for month {month} (the data covers {span})")
    edges: dict[str, pd.DataFrame] = {}
    seats = holdings = cpc = None
    if market.supply_links is not None:
        edges[b.SUPPLIES] = b.supplies(market.supply_links, month, cfg)
    if market.board_seats is not None:
        edges[b.SHARES_DIRECTOR] = b.shares_director(market.board_seats, month, cfg)
        seats = b.director_seats(market.board_seats, month)
    if market.fund_holdings is not None:
        edges[b.CO_HELD] = b.co_held(market.fund_holdings, month, cfg)
        holdings = b.fund_holdings(market.fund_holdings, month)
    if market.patents is not None:
        edges[b.TECH_SIMILAR] = b.tech_similar(market.patents, month, cfg)
        cpc = b.cpc_portfolio(market.patents, month, cfg)
    facts = {k: v for k, v in (("seats", seats), ("holdings", holdings), ("cpc", cpc)) if v is not None}
    snap = GraphSnapshot(month, market.companies[["ticker", "name", "sector"]], edges, config=cfg, **facts)
    log.info("%s: %s", month, ", ".join(f"{r} {len(f):,}" for r, f in snap.edges.items()))
    return snap


def build_snapshots(
    market: MarketData, months: Iterable[str] | None = None, cfg: GraphConfig | None = None, progress: bool = False
) -> Iterator[GraphSnapshot]:
    """Build snapshots month by month (default: every month with data), one at a time."""
    from tqdm.auto import tqdm

    months = list(months) if months is not None else data_months(market)
    for month in tqdm(months, desc="building graphs", unit="month", disable=not progress):
        yield build_snapshot(market, month, cfg)
