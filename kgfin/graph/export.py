"""Export a snapshot as Parquet tables or as one GraphML file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from kgfin.errors import KgfinError
from kgfin.graph.snapshot import GraphSnapshot

__all__ = ["export_snapshot"]

ExportFormat = Literal["parquet", "graphml"]


def export_snapshot(snap: GraphSnapshot, out: str | Path, fmt: ExportFormat = "parquet") -> list[Path]:
    """Write ``snap`` and return the files written.

    ``parquet``: ``out`` is a directory that receives ``companies``, ``edges`` (long format:
    relation, source, target, weight, attributes), ``seats``, ``holdings`` and ``cpc`` tables.
    ``graphml``: ``out`` is a file holding the bipartite graph of :meth:`GraphSnapshot.to_networkx`
    (missing attributes are left out rather than written as NaN).
    """
    out = Path(out)
    if fmt == "parquet":
        from kgfin.data.tables import write_table

        out.mkdir(parents=True, exist_ok=True)
        tables = {"companies": snap.companies, "edges": snap.edge_table(), "seats": snap.seats,
                  "holdings": snap.holdings, "cpc": snap.cpc}
        return [write_table(frame, out, f"{name}", "parquet") for name, frame in tables.items()]
    if fmt == "graphml":
        import networkx as nx

        out.parent.mkdir(parents=True, exist_ok=True)
        g = snap.to_networkx(bipartite=True)
        for _, _, data in g.edges(data=True):
            for key in [k for k, v in data.items() if v != v]:  # NaN: attribute absent for this edge
                del data[key]
        nx.write_graphml(g, out)
        return [out]
    raise KgfinError(f"unknown export format {fmt!r} (use parquet or graphml)")
