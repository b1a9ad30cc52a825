"""Data directory -> monthly snapshots -> graph store, one month at a time."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

from kgfin.data.loaders import MarketData, find_table, load_market
from kgfin.errors import KgfinError
from kgfin.graph.config import GraphConfig
from kgfin.graph.snapshot import GraphSnapshot, build_snapshot, data_months
from kgfin.store.base import GraphStore, StoreError, WriteSummary

__all__ = ["GRAPH_TABLES", "build_into_store", "expand_months", "load_graph_tables", "required_snapshots",
           "stored_snapshots"]

log = logging.getLogger(__name__)

GRAPH_TABLES = ("supply_links", "board_seats", "fund_holdings", "patents")
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def load_graph_tables(data_dir: str | Path) -> MarketData:
    """Load (and validate) only the tables the graph needs: companies and whichever relation tables exist."""
    data_dir = Path(data_dir)
    present = [t for t in GRAPH_TABLES if find_table(data_dir, t) is not None]
    if not present:
        raise KgfinError(f"{data_dir}: none of the relation tables {', '.join(GRAPH_TABLES)} is present")
    return load_market(data_dir, tables=present)


def expand_months(specs: list[str] | None, available: list[str]) -> list[str]:
    """Months from ``YYYY-MM`` and ``YYYY-MM..YYYY-MM`` items (default: all available), sorted, checked.

    >>> expand_months(["2014-03..2014-05", "2014-01"], ["2014-01", "2014-02", "2014-03", "2014-04", "2014-05"])
    ['2014-01', '2014-03', '2014-04', '2014-05']
    """
    if not specs:
        return list(available)
    out: set[str] = set()
    for spec in specs:
        lo, _, hi = spec.partition("..")
        hi = hi or lo
        if not (_MONTH.fullmatch(lo) and _MONTH.fullmatch(hi)) or hi < lo:
            raise KgfinError(f"month {spec!r}: use YYYY-MM or YYYY-MM..YYYY-MM")
        chosen = [m for m in available if lo <= m <= hi]
        if not chosen:
            span = f"{available[0]}..{available[-1]}" if available else "no months"
            raise KgfinError(f"month {spec!r}: no data for it (the data covers {span})")
        out.update(chosen)
    return sorted(out)


def stored_snapshots(store: GraphStore) -> Callable[[str], GraphSnapshot | None]:
    """month -> the store's GraphSnapshot, or None for a month it does not hold (an earlier month a rotating buffer
    looks back at); an empty store is an error saying how to fill it."""
    months = set(store.months())
    if not months:
        raise StoreError(f"the graph store {store.describe()} holds no months: run `kgfin graph build DATA_DIR` first")
    return lambda m: store.read_snapshot(m) if m in months else None


def required_snapshots(store: GraphStore, lag: int = 0) -> Callable[[str], GraphSnapshot]:
    """month -> the store's GraphSnapshot; a month it does not hold is an error that says how to add it (``lag``:
    news is read with the graph that many months before it, which the message says)."""
    stored = stored_snapshots(store)

    def read(month: str) -> GraphSnapshot:
        snap = stored(month)
        if snap is None:
            raise StoreError(f"the graph store {store.describe()} has no month {month} (news is read with the graph "
                             f"{lag} month(s) before it): run `kgfin graph build` for it")
        return snap

    return read


def build_into_store(
    data: str | Path | MarketData,
    store: GraphStore,
    months: list[str] | None = None,
    cfg: GraphConfig | None = None,
    progress: bool = False,
) -> list[WriteSummary]:
    """Build each month's snapshot from ``data`` and write it to ``store`` (months: see :func:`expand_months`).

    Each Snapshot node keeps the config it was built with; an embedded store's directory also
    gets ``kgfin-run.json`` (config, months, versions) for the last build.
    """
    from tqdm.auto import tqdm

    from kgfin.runinfo import write_manifest
    from kgfin.store.falkor import FalkorStore

    cfg = cfg or GraphConfig()
    market = data if isinstance(data, MarketData) else load_graph_tables(data)
    chosen = expand_months(months, data_months(market))
    summaries = []
    for month in tqdm(chosen, desc="graph months", unit="month", disable=not progress):
        summaries.append(store.write_snapshot(build_snapshot(market, month, cfg), progress=False))
    log.info("wrote %d month(s) to %s", len(summaries), store.describe())
    if isinstance(store, FalkorStore) and store.server is not None:  # an embedded store is a run directory
        write_manifest(store.server.data_dir, "kgfin graph build", cfg, extra={
            "months": chosen, "relationships": {s.month: s.relationships for s in summaries}})
    return summaries
