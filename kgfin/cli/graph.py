"""Company knowledge graphs in the store: build, stats, query, export, serve / stop / status (``kgfin graph ...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from kgfin.cli._app import (
    CliError,
    RecipeOption,
    SetOption,
    StoreOption,
    app,
    configs,
    console,
    err_console,
)

graph_app = typer.Typer(
    help="Company knowledge graphs: build monthly snapshots into the graph store, query them, export them.",
    no_args_is_help=True,
)
app.add_typer(graph_app, name="graph")

_SHORT = {"companies": "firms", "SUPPLIES": "supply", "SHARES_DIRECTOR": "boards", "CO_HELD": "co-held",
          "TECH_SIMILAR": "tech", "SITS_ON": "seats", "HOLDS": "holds", "PATENTS_IN": "cpc",
          "share_1": "1 type", "share_2": "2 types", "share_3plus": "3+ types"}


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e5 else f"{value:.6g}"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return "" if value is None else str(value)


@graph_app.command("build")
def graph_build(
    data_dir: Annotated[Path, typer.Argument(help="Data directory (companies + supply_links, board_seats, fund_holdings, patents).")],
    store: StoreOption = None,
    month: Annotated[list[str] | None, typer.Option("--month", "-m", help="YYYY-MM or YYYY-MM..YYYY-MM (repeatable); default: every month with data.")] = None,
    config: RecipeOption = None,
    set_: SetOption = None,
) -> None:
    """Build the monthly graphs of DATA_DIR and write them to the store (a month written again is replaced)."""
    from kgfin.graph import RELATIONS, GraphConfig
    from kgfin.store import build_into_store, open_store

    cfg = configs({"graph": GraphConfig}, config, list(set_ or []))["graph"]
    with open_store(store) as st:
        summaries = build_into_store(data_dir, st, month, cfg, progress=True)
        where = st.describe()
    table = Table(title=f"graph snapshots -> {where}", box=box.SIMPLE,
                  caption="facts: director seats, fund holdings and CPC portfolios (SITS_ON, HOLDS, PATENTS_IN)")
    for col in ("month", "companies", *RELATIONS, "facts", "seconds"):
        table.add_column(_SHORT.get(col, col), justify="left" if col == "month" else "right")
    for s in summaries:
        facts = sum(n for t, n in s.relationships.items() if t not in RELATIONS)
        table.add_row(s.month, f"{s.nodes['Company']:,}", *(f"{s.relationships[r]:,}" for r in RELATIONS),
                      f"{facts:,}", f"{s.seconds:.1f}")
    console.print(table)


@graph_app.command("stats")
def graph_stats(
    store: StoreOption = None,
    month: Annotated[list[str] | None, typer.Option("--month", "-m", help="Only these months (repeatable).")] = None,
) -> None:
    """Per month: companies, relationships per type, share of linked pairs with 1, 2, 3+ relation types."""
    from kgfin.store import open_store

    with open_store(store, create=False) as st:
        frame = st.stats(month or None)
        where = st.describe()
        incomplete = st.incomplete_months()
    for m in incomplete:
        err_console.print(f"month {m} is incomplete (its write was interrupted): re-run the build for it")
    if frame.empty:
        console.print(f"{where} holds no complete months (run `kgfin graph build DATA_DIR`)")
        raise typer.Exit(1 if incomplete else 0)
    counts = ["month", "companies", *[c for c in frame.columns if c.isupper()]]
    for title, cols in ((f"relationships per month in {where}", counts),
                        ("linked company pairs and the share linked by 1, 2 or 3+ relation types (paper's Table 6)",
                         ["month", "companies", "pairs", "share_1", "share_2", "share_3plus"])):
        table = Table(title=title, box=box.SIMPLE)
        for col in cols:
            table.add_column(_SHORT.get(col, col), justify="left" if col == "month" else "right")
        for row in frame[cols].itertuples(index=False):
            table.add_row(*(v if isinstance(v, str) else f"{v:.1%}" if c.startswith("share") else f"{v:,}"
                            for c, v in zip(cols, row, strict=True)))
        console.print(table)
    if incomplete:
        raise typer.Exit(1)


@graph_app.command("query")
def graph_query(
    name: Annotated[str | None, typer.Argument(help="A query of graphdb/queries (see --list).")] = None,
    cypher: Annotated[str | None, typer.Option("--cypher", help="Read-only Cypher to run instead of a named query.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="name=value (repeatable); values are passed as parameters, never pasted into the query.")] = None,
    store: StoreOption = None,
    list_: Annotated[bool, typer.Option("--list", help="List the named queries and their parameters.")] = False,
    limit: Annotated[int, typer.Option(help="Rows to fetch and print (with --csv: all rows, up to $KGFIN_GRAPH_MAX_ROWS, default 100,000).")] = 50,
    csv: Annotated[Path | None, typer.Option("--csv", help="Also write the full result to this CSV file.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds the server may spend on the query (default $KGFIN_GRAPH_QUERY_TIMEOUT, else 60).")] = None,
) -> None:
    """Run a named query or --cypher (read-only: a query that would write is refused)."""
    from kgfin.store import load_queries, open_store, parse_param

    if list_:
        table = Table(title="graph queries (graphdb/queries)")
        for col in ("name", "parameters", "description"):
            table.add_column(col)
        for q in load_queries().values():
            params = ", ".join(f"{p.name}:{p.type}" + ("" if p.required else f"={p.default}") for p in q.params)
            table.add_row(q.name, params, q.description)
        console.print(table)
        return
    if (name is None) == (cypher is None):
        raise CliError("give a query NAME or --cypher TEXT (see kgfin graph query --list)")
    params = dict(parse_param(p) for p in param or [])
    rows = None if csv is not None else limit
    with open_store(store, create=False) as st:
        frame = (st.run_query(name, params, max_rows=rows, timeout=timeout) if name is not None
                 else st.query(cypher or "", params, max_rows=rows, timeout=timeout))
        where = st.describe()
    cut = frame.attrs.get("truncated", False)
    if csv is not None:
        frame.to_csv(csv, index=False)
        if cut:
            err_console.print(f"the result was cut at {len(frame):,} rows ($KGFIN_GRAPH_MAX_ROWS raises the cap)")
    more = f", first {limit}" if len(frame) > limit else (" (more not fetched)" if cut else "")
    table = Table(title=f"{name or 'query'}: {len(frame):,} row(s)" + more, caption=f"store: {where}")
    for col in frame.columns:
        table.add_column(str(col))
    for row in frame.head(limit).itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    console.print(table)


@graph_app.command("export")
def graph_export(
    month: Annotated[str, typer.Option("--month", "-m", help="The month to export (YYYY-MM).")],
    fmt: Annotated[str, typer.Option("--format", help="parquet (a directory of tables) or graphml (one file).")] = "parquet",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output path (default exports/graph-MONTH[.graphml]).")] = None,
    store: StoreOption = None,
) -> None:
    """Read a month back from the store and export it."""
    from kgfin.graph import export_snapshot
    from kgfin.store import open_store

    if fmt not in ("parquet", "graphml"):
        raise CliError(f"--format must be parquet or graphml, got {fmt!r}")
    out = out or Path("exports") / (f"graph-{month}" + (".graphml" if fmt == "graphml" else ""))
    with open_store(store, create=False) as st:
        snap = st.read_snapshot(month)
        where = st.describe()
    files = export_snapshot(snap, out, fmt)  # type: ignore[arg-type]
    console.print(f"{month} of {where}: {len(snap.companies):,} companies, {snap.stats().total_edges:,} edges -> "
                  + ", ".join(str(f) for f in files))


def _embedded_dir(store: str | None) -> Path:
    from kgfin.store import is_neo4j_uri, store_target

    target = store_target(store)
    if is_neo4j_uri(target) or "://" in str(target):
        raise CliError(f"{target} is not an embedded store; serve/stop/status manage the embedded FalkorDB only")
    return Path(target)


@graph_app.command("serve")
def graph_serve(store: StoreOption = None) -> None:
    """Start the embedded FalkorDB server for the store directory and leave it running."""
    from kgfin.store import EmbeddedServer

    server = EmbeddedServer(_embedded_dir(store))
    started = server.start()
    st = server.status()
    console.print(f"FalkorDB {'started' if started else 'already running'} (pid {st.pid}) on unix socket {st.socket}; "
                  "stop it with `kgfin graph stop`")


@graph_app.command("stop")
def graph_stop(store: StoreOption = None) -> None:
    """Stop the embedded FalkorDB server of the store directory (its data is saved first)."""
    from kgfin.store import EmbeddedServer

    server = EmbeddedServer(_embedded_dir(store))
    console.print("FalkorDB stopped" if server.stop() else f"no FalkorDB server was running for {server.data_dir}")


@graph_app.command("status")
def graph_status(store: StoreOption = None) -> None:
    """Is the embedded FalkorDB server of the store directory running?"""
    from kgfin.store import EmbeddedServer

    st = EmbeddedServer(_embedded_dir(store)).status()
    detail = f" (pid {st.pid}, socket {st.socket})" if st.running else ""
    console.print(f"FalkorDB for {st.data_dir}: {st.state}{detail}")
    for o in EmbeddedServer.orphans():
        console.print(f"orphan: FalkorDB pid {o.pid} for {o.data_dir}, used by no kgfin process "
                      f"(the next command on that store adopts it; `kgfin graph stop --store {o.data_dir}` stops it)")
