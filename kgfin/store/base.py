"""GraphStore: one interface over the embedded FalkorDB store and Neo4j.

The backends implement a few primitives (read, write, schema, flush, close); everything else -
writing and reading snapshots, months, statistics, neighbourhoods, read-only queries - is
shared here and runs the same Cypher text (:mod:`kgfin.store.model`) on both. A backend may
keep a derived copy of each month for fast traversal (FalkorDB does: its month graphs) through
the hooks ``_write_month_graph`` / ``_drop_month_graph`` and answer ``_neighbour_step`` from it.

Writing a month is idempotent: the month's relationships and its ``Snapshot`` node are
removed first, nodes are MERGEd, relationships created in batches, and the snapshot is
marked complete last, so a month that failed half-way is never listed or read; a write that
fails with an error removes what it had written of the month (a killed process cannot: its
month stays marked incomplete until written again).
"""

from __future__ import annotations

import json
import logging
import numbers
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from kgfin.data.calendar import month_bounds
from kgfin.errors import KgfinError
from kgfin.graph.builders import EDGE_COLUMNS, RELATIONS
from kgfin.graph.config import GraphConfig
from kgfin.graph.snapshot import GraphSnapshot
from kgfin.store import model as m
from kgfin.store.queries import (
    NamedQuery,
    QueryError,
    check_read_only,
    clean_params,
    graphdb_dir,
    load_queries,
    strip_cypher,
)

__all__ = ["GraphStore", "StoreError", "WriteSummary"]

log = logging.getLogger(__name__)
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


class StoreError(KgfinError):
    """The graph store cannot be reached or refused an operation."""


@dataclass(frozen=True)
class WriteSummary:
    """What one ``write_snapshot`` wrote."""

    month: str
    nodes: dict[str, int]
    relationships: dict[str, int]
    seconds: float

    @property
    def total_relationships(self) -> int:
        return sum(self.relationships.values())


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of ``frame`` as plain-Python dicts (numpy scalars converted)."""
    columns = [frame[c].to_numpy(dtype=object).tolist() if frame[c].dtype.kind not in "biuf" else frame[c].tolist()
               for c in frame.columns]
    return [dict(zip(frame.columns, row, strict=True)) for row in zip(*columns, strict=True)]


def group_bounds(keys: pd.Series) -> list[tuple[int, int]]:
    """(start, stop) of each run of equal consecutive ``keys``."""
    values = keys.to_numpy(dtype=object)
    if values.size == 0:
        return []
    starts = [0, *(i for i in range(1, values.size) if values[i] != values[i - 1])]
    return list(zip(starts, [*starts[1:], values.size], strict=True))


_RETURN = re.compile(r"(?<![.\w$])RETURN\b", re.I)
_LIMIT = re.compile(r"(?<![.\w$])LIMIT\b", re.I)


def with_limit(cypher: str, n: int) -> str:
    """``cypher`` with ``LIMIT n`` appended when it ends with a RETURN that has no LIMIT of its own.

    >>> with_limit("UNWIND range(1, 3000000) AS x RETURN x;", 4)
    'UNWIND range(1, 3000000) AS x RETURN x\\nLIMIT 4'
    >>> with_limit("MATCH (n) RETURN n.name LIMIT 2", 4)
    'MATCH (n) RETURN n.name LIMIT 2'
    """
    text = strip_cypher(cypher)
    returns = list(_RETURN.finditer(text))
    if not returns or _LIMIT.search(text, returns[-1].end()) or "}" in text[returns[-1].end():]:
        return cypher  # no final RETURN (or it is inside a subquery): the rows are cut client-side only
    return cypher.rstrip().rstrip(";").rstrip() + f"\nLIMIT {int(n)}"


def grouped_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows with columns a, b, ... as ``[{a, edges: [{b, ...}, ...]}]`` (consecutive rows of one ``a``)."""
    rest = records(frame.drop(columns="a"))
    keys = frame["a"].to_numpy(dtype=object).tolist()
    return [{"a": keys[lo], "edges": rest[lo:hi]} for lo, hi in group_bounds(frame["a"])]


class GraphStore(ABC):
    """A graph database holding monthly company snapshots; queries are read-only.

    Use as a context manager, or call :meth:`close`.
    """

    backend: str = "abstract"
    batch_size: int = 10_000
    query_timeout: float = 60.0  # seconds a query of :meth:`query` / :meth:`run_query` may run on the server
    max_rows: int = 100_000  # rows a query of :meth:`query` / :meth:`run_query` returns at most

    def __init__(self) -> None:
        self._schema_ready = False
        self._queries: dict[str, NamedQuery] | None = None

    # --- backend primitives ----------------------------------------------------------------

    @abstractmethod
    def _read(self, cypher: str, params: dict[str, Any],
              timeout: float | None = None) -> tuple[list[str], list[list[Any]]]:
        """Run read-only ``cypher`` (stopped by the server after ``timeout`` seconds, if given);
        return column names and rows of plain values."""

    @abstractmethod
    def _write(self, cypher: str, params: dict[str, Any]) -> list[list[Any]]:
        """Run one writing statement (one batch), commit it and return its rows (if any)."""

    @abstractmethod
    def _create_schema(self) -> None:
        """Create the indexes and constraints of ``graphdb/schema.cypher`` if missing."""

    @abstractmethod
    def flush(self) -> None:
        """Make everything written so far durable (called after each snapshot)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections (and stop a server this store started)."""

    @abstractmethod
    def describe(self) -> str:
        """One line saying which database this is."""

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- helpers ---------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Create indexes/constraints once per store object."""
        if not self._schema_ready:
            self._create_schema()
            self._schema_ready = True

    def _scalar(self, cypher: str, params: dict[str, Any] | None = None) -> Any:
        _, rows = self._read(cypher, params or {})
        return rows[0][0] if rows else None

    def _frame(self, cypher: str, params: dict[str, Any]) -> pd.DataFrame:
        columns, rows = self._read(cypher, params)
        return pd.DataFrame(rows, columns=columns)

    def _write_rows(self, cypher: str, frame: pd.DataFrame, params: dict[str, Any], bar: Any) -> None:
        """Run ``cypher`` over ``frame`` in batches of ``batch_size`` rows passed as ``$rows``."""
        for lo in range(0, len(frame), self.batch_size):
            chunk = frame.iloc[lo:lo + self.batch_size]
            self._write(cypher, {"rows": records(chunk), **params})
            bar.update(len(chunk))

    def _write_edges(self, rel: str, frame: pd.DataFrame, month: str, bar: Any) -> None:
        """Create ``rel`` relationships of ``month`` from ``frame`` (columns a, b, properties) in batches."""
        cypher = m.edges_write(rel)
        for lo in range(0, len(frame), self.batch_size):
            chunk = frame.iloc[lo:lo + self.batch_size]
            self._write(cypher, {"rows": grouped_records(chunk), "month": month})
            bar.update(len(chunk))

    # --- hooks for a backend's per-month traversal copy --------------------------------------

    def _write_month_graph(self, snap: GraphSnapshot) -> None:
        """Build what the backend keeps per month for traversal (nothing by default); called after
        the month's relationships are written and before its Snapshot is marked complete."""
        return None

    def _drop_month_graph(self, month: str) -> None:
        """Remove what :meth:`_write_month_graph` built for ``month``."""
        return None

    def _repeat_delete(self, cypher: str, params: dict[str, Any], limit: int = 50_000) -> int:
        total = 0
        while True:
            rows = self._write(cypher, {**params, "limit": limit})
            n = int(rows[0][0]) if rows else 0
            total += n
            if n < limit:
                return total

    # --- months ----------------------------------------------------------------------------

    def months(self) -> list[str]:
        """Months whose snapshot is completely written, sorted."""
        return [r[0] for r in self._read(m.MONTHS, {})[1]]

    def _acquire_writer(self) -> None:
        """Take the store's writer lock before the first write (a backend without one: nothing)."""
        return None

    def delete_month(self, month: str) -> None:
        """Remove a month's snapshot and relationships, and nodes nothing refers to any more."""
        month_bounds(month)
        self._acquire_writer()
        self.ensure_schema()
        self._drop_month_graph(month)
        for stmt in m.delete_statements():
            self._repeat_delete(stmt, {"month": month})
        for stmt in m.ORPHANS:
            self._repeat_delete(stmt, {})

    def write_snapshot(self, snap: GraphSnapshot, progress: bool = False) -> WriteSummary:
        """Write (or replace) ``snap.month``; writing the same snapshot twice leaves the same graph."""
        from tqdm.auto import tqdm

        from kgfin import __version__

        t0 = time.perf_counter()
        self._acquire_writer()
        self.ensure_schema()
        month = snap.month
        # A month written before (even half-way: its Snapshot node is created first) is removed
        # first; a new month skips the removal scans, which grow with the store.
        replacing = bool(self._scalar(m.SNAPSHOT_EXISTS, {"month": month}))
        if replacing:
            for stmt in m.delete_statements():
                self._repeat_delete(stmt, {"month": month})
        nodes = {
            "Company": snap.companies.rename(columns={"ticker": "key"}),
            "Director": pd.DataFrame({"key": sorted(snap.seats["director_id"].unique())}, dtype=object),
            "Fund": pd.DataFrame({"key": sorted(snap.holdings["fund_id"].unique())}, dtype=object),
            "CPC": pd.DataFrame({"key": sorted(snap.cpc["cpc_group"].unique())}, dtype=object),
        }
        rels = {rel: snap.edges[rel].rename(columns={"source": "a", "target": "b"}) for rel in RELATIONS}
        for rel, (frame, a, b) in m.FACT_FRAMES.items():
            rels[rel] = getattr(snap, frame).rename(columns={a: "a", b: "b"})
        total = sum(map(len, nodes.values())) + sum(map(len, rels.values())) + len(snap.companies)
        try:
            with tqdm(total=total, desc=f"writing {month}", unit="row", disable=not progress) as bar:
                self._write(m.SNAPSHOT_BEGIN, {"month": month})
                for label, frame in nodes.items():
                    self._write_rows(m.node_merge(label), frame, {}, bar)
                self._write_rows(m.SNAPSHOT_COMPANIES, nodes["Company"], {"month": month}, bar)
                for rel, frame in rels.items():
                    self._write_edges(rel, frame, month, bar)
            self._write_month_graph(snap)
            if replacing:  # only a replaced month can leave nodes that nothing refers to
                for stmt in m.ORPHANS:
                    self._repeat_delete(stmt, {})
            stats = json.dumps(snap.stats().as_dict(), sort_keys=True)
            self._write(m.SNAPSHOT_FINISH, {"month": month, "config": snap.config.model_dump_json(),
                                            "stats": stats, "version": __version__})
        except Exception:
            self._discard_partial(month)
            raise
        self.flush()
        summary = WriteSummary(month, {k: len(v) for k, v in nodes.items()}, {k: len(v) for k, v in rels.items()},
                               time.perf_counter() - t0)
        log.info("%s: wrote %d relationships in %.1f s", month, summary.total_relationships, summary.seconds)
        return summary

    def _discard_partial(self, month: str) -> None:
        """Remove what a failed write of ``month`` left (best effort: the store may be unreachable)."""
        try:
            self.delete_month(month)
            log.info("%s: removed the partial writes of month %s", self.describe(), month)
        except Exception as exc:  # the original error matters more; the month stays incomplete, never listed
            log.warning("%s: could not remove the partial writes of month %s (%s); it stays marked incomplete "
                        "until it is written again", self.describe(), month, exc)

    def write_snapshots(self, snaps: Iterable[GraphSnapshot], progress: bool = False) -> list[WriteSummary]:
        """Write several snapshots (a generator is consumed one month at a time)."""
        return [self.write_snapshot(s, progress=progress) for s in snaps]

    def read_snapshot(self, month: str) -> GraphSnapshot:
        """Read a month back as a GraphSnapshot (equal to the one written, floats to storage precision)."""
        month_bounds(month)
        _, info = self._read(m.SNAPSHOT_INFO, {"month": month})
        if not info or not info[0][0]:
            raise self._missing_month(month)
        cfg = GraphConfig.model_validate_json(info[0][1])
        p = {"month": month}
        companies = self._frame(m.SNAPSHOT_READ_COMPANIES, p)
        edges = {rel: self._frame(m.relation_read(rel), p) for rel in RELATIONS}
        facts = {}
        for rel, (frame, a, b) in m.FACT_FRAMES.items():
            cols = [a, b, *m.FACT_TYPES[rel][4]]
            read = self._frame(m.fact_read(rel), p)
            read.columns = cols
            facts[frame] = read
        for rel, frame in edges.items():
            edges[rel] = frame[EDGE_COLUMNS[rel]]
        return GraphSnapshot(month, companies, edges, config=cfg, **facts)

    def incomplete_months(self) -> list[str]:
        """Months whose write never finished (a killed build): hidden from :meth:`months`, sorted."""
        return [r[0] for r in self._read(m.ALL_SNAPSHOTS, {})[1] if not r[1]]

    def _missing_month(self, month: str) -> StoreError:
        if month in self.incomplete_months():
            return StoreError(f"month {month} is incomplete in the store {self.describe()} "
                              "(its write was interrupted): re-run the build for it")
        have = self.months()
        return StoreError(f"month {month} is not in the store {self.describe()} "
                          f"({'it holds ' + have[0] + '..' + have[-1] if have else 'it holds no months'})")

    def check_months(self, params: dict[str, Any] | None) -> None:
        """Raise the missing-month error for a parameter named ``*month`` whose month is not complete in the store."""
        wanted = {v for k, v in (params or {}).items()
                  if k.endswith("month") and isinstance(v, str) and _MONTH.fullmatch(v)}
        if wanted - set(self.months()):
            raise self._missing_month(min(wanted - set(self.months())))

    # --- neighbourhoods --------------------------------------------------------------------

    def neighbourhood(self, ticker: str, month: str, hops: int = 2) -> pd.DataFrame:
        """The companies within ``hops`` company-company relationships of ``ticker`` in ``month``.

        Relationships of any of the four types count, in either direction, and only those of
        ``month``. Columns ``ticker`` and ``hop`` (the shortest distance, 1..``hops``), sorted by
        hop and ticker; ``ticker`` itself is not listed. A company without links in ``month`` (or
        not in it) has an empty neighbourhood; a month not in the store is an error.
        """
        if not isinstance(month, str) or not _MONTH.fullmatch(month):
            month_bounds(month)  # raises the usual error
        if isinstance(hops, bool) or not isinstance(hops, numbers.Integral) or hops < 1:
            raise QueryError(f"hops must be a positive integer, got {hops!r}")
        step = self._neighbour_step(month)
        seen, frontier, tickers, distance = {ticker}, [ticker], [], []
        for hop in range(1, int(hops) + 1):
            if not frontier:
                break
            frontier = sorted(set(step(frontier)) - seen)
            seen.update(frontier)
            tickers += frontier
            distance += [hop] * len(frontier)
        return pd.DataFrame({"ticker": pd.Series(tickers, dtype=object), "hop": pd.Series(distance, dtype="int64")})

    def _neighbour_step(self, month: str) -> Callable[[list[str]], list[str]]:
        """A function from tickers to the tickers linked to any of them in ``month`` (checks the month)."""
        if not self._scalar(m.SNAPSHOT_COMPLETE, {"month": month}):
            raise self._missing_month(month)
        return lambda tickers: self._linked(tickers, month)

    def _linked(self, tickers: list[str], month: str) -> list[str]:
        """Tickers linked to any of ``tickers`` by a company-company relationship of ``month`` (all-months graph)."""
        return [r[0] for r in self._read(m.NEIGHBOURS, {"tickers": tickers, "month": month})[1]]

    # --- statistics ------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Number of nodes per label and relationships per type in the whole store."""
        out = {label: int(self._scalar(m.COUNT_LABEL.format(label=label))) for label in m.NODE_KEYS}
        for t in (*m.MONTH_TYPES, "HAS_COMPANY"):
            out[t] = int(self._scalar(m.COUNT_TYPE.format(type=t)))
        return out

    def stats(self, months: list[str] | None = None) -> pd.DataFrame:
        """One row per month: companies, live relationship counts per type, and the Table-6 pair shares."""
        _, rows = self._read(m.MONTHS, {})
        stored = {r[0]: json.loads(r[1]) for r in rows}
        wanted = months if months is not None else sorted(stored)
        out = []
        for month in wanted:
            if month not in stored:
                raise self._missing_month(month)
            row: dict[str, Any] = {"month": month, "companies": stored[month]["companies"]}
            for t in m.MONTH_TYPES:
                row[t] = int(self._scalar(m.COUNT_TYPE_MONTH.format(type=t), {"month": month}))
            for k in ("pairs", "share_1", "share_2", "share_3plus"):
                row[k] = stored[month][k]
            out.append(row)
        return pd.DataFrame(out, columns=["month", "companies", *m.MONTH_TYPES, "pairs", "share_1", "share_2",
                                          "share_3plus"])

    # --- read-only queries -----------------------------------------------------------------

    def query(self, cypher: str, params: dict[str, Any] | None = None, *, max_rows: int | None = None,
              timeout: float | None = None) -> pd.DataFrame:
        """Run read-only Cypher with parameters; a query that could write is refused.

        Exploration guards: the server stops the query after ``timeout`` seconds (default
        :attr:`query_timeout`), and at most ``max_rows`` rows (default :attr:`max_rows`) are
        fetched: the limit is pushed into the query (``LIMIT max_rows + 1`` after a final
        RETURN without one), so the server never materialises more. A cut result has
        ``frame.attrs["truncated"] = True``. A parameter named ``*month`` must name a month
        the store holds completely (else the missing-month error, not an empty answer).
        """
        check_read_only(cypher)
        self.check_months(params)
        cap = self.max_rows if max_rows is None else max_rows
        if cap < 0:
            raise QueryError(f"max_rows must be >= 0, got {cap}")
        columns, rows = self._read(with_limit(cypher, cap + 1), clean_params(params, cypher),
                                   timeout=self.query_timeout if timeout is None else timeout)
        frame = pd.DataFrame(rows[:cap], columns=columns)
        frame.attrs["truncated"] = len(rows) > cap
        if len(rows) > cap:
            log.info("query result cut at %d rows", cap)
        return frame

    @property
    def queries(self) -> dict[str, NamedQuery]:
        """The named query library (``graphdb/queries``)."""
        if self._queries is None:
            self._queries = load_queries(graphdb_dir() / "queries")
        return self._queries

    def run_query(self, name: str, params: dict[str, Any] | None = None, *, max_rows: int | None = None,
                  timeout: float | None = None) -> pd.DataFrame:
        """Run the library query ``name`` with ``params`` (checked against its declared parameters)."""
        if name not in self.queries:
            raise QueryError(f"no query named {name!r} (have: {', '.join(sorted(self.queries))})")
        q = self.queries[name]
        return self.query(q.cypher, q.bind(params), max_rows=max_rows, timeout=timeout)
