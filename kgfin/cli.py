"""The ``kgfin`` command line: parses arguments, calls the library, prints a summary.

Heavy libraries are imported inside the commands so that ``kgfin --help`` is instant.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from kgfin.errors import KgfinError

app = typer.Typer(
    help="kgfin: graph-aware financial LLMs (knowledge graphs, LoRA injection, market alignment, ripple evaluation).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Input data: generate the synthetic market, validate a data directory.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a field of the recipe (repeatable): --set KEY=VALUE, with a dotted KEY "
                                 "for a nested field, e.g. section.field=value."),
]


class CliError(KgfinError):
    """An expected failure found by the CLI itself."""


def _version(value: bool) -> None:
    if value:
        from kgfin import __version__

        console.print(f"kgfin {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-v info, -vv debug).")] = 0,
) -> None:
    from rich.logging import RichHandler

    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=err_console, show_path=False)])


def _overrides(flags: dict[str, object], extra: list[str] | None) -> list[str]:
    return [f"{k}={v}" for k, v in flags.items() if v is not None] + list(extra or [])


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("data/synth"),
    companies: Annotated[int | None, typer.Option(help="Number of companies (default 120).")] = None,
    months: Annotated[int | None, typer.Option(help="Number of months (default 36).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    start: Annotated[str | None, typer.Option(help="First month YYYY-MM (default 2014-01).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="parquet or csv (default parquet).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file with a SynthConfig (see docs/synthetic-market.md).")] = None,
    set_: SetOption = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output directory.")] = False,
) -> None:
    """Generate the synthetic market (tables + ground truth) into OUT."""
    from kgfin.config import load_config
    from kgfin.data.synth import SynthConfig, synthesize

    cfg = load_config(SynthConfig, config, _overrides(
        {"companies": companies, "months": months, "seed": seed, "start": start, "format": fmt}, set_))
    if out.exists() and any(out.iterdir()) and not force:
        raise CliError(f"{out} exists and is not empty (use --force to replace it)")
    summary = synthesize(cfg, out, overwrite=force, progress=True)
    table = Table(title=f"synthetic market -> {out}  ({summary.months[0]}..{summary.months[-1]}, seed {cfg.seed})")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in summary.rows.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    real = summary.factor_sources["source"].str.startswith("real").mean()
    console.print(f"factor history: {real:.0%} of month-series from real data (details: {out}/truth/factor_sources.csv)")
    console.print(f"ground truth in {out}/truth; generated in {summary.seconds:.1f} s")


@data_app.command("validate")
def data_validate(
    data_dir: Annotated[Path, typer.Argument(help="Directory with the tables (Parquet or CSV).")],
    max_return: Annotated[float, typer.Option(help="Daily returns above this are warned about (1.0 = +100 %).")] = 1.0,
) -> None:
    """Check every table in DATA_DIR; report all problems (file, rows, column) and exit 1 if any is an error."""
    from kgfin.data import validate_dir
    from kgfin.data.loaders import SUFFIXES
    from kgfin.data.schemas import TABLES

    problems = validate_dir(data_dir, max_return=max_return)
    present = [n for n in TABLES if any((data_dir / f"{n}{s}").exists() for s in SUFFIXES)]
    errors = sum(p.severity == "error" for p in problems)
    if problems:
        colour = "red" if errors else "yellow"
        err_console.print(f"[{colour}]{errors} error(s), {len(problems) - errors} warning(s) in {data_dir}:[/{colour}]")
        for p in problems:
            err_console.print(f"  - {p}", markup=False, highlight=False, soft_wrap=True)
    if errors:
        raise typer.Exit(1)
    console.print(f"[green]ok[/green]: {data_dir} ({', '.join(present)}) passes validation")


@app.command("fuse")
def fuse(
    data: Annotated[Path, typer.Option("--data", "-d", help="Data directory (stock_factors, returns, news).")] = Path("data/synth"),
    config: Annotated[Path | None, typer.Option(help="YAML recipe with a FusionConfig (e.g. training/fusion.yaml).")] = None,
    set_: SetOption = None,
    ripple: Annotated[str | None, typer.Option(
        "--ripple", help="Ripple scores: a Parquet/CSV file (month, ticker, ripple), or 'oracle' (synthetic truth: "
                         "perfect ripple knowledge) or 'propagation' (observable baseline). Omit to train without ripple.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (replaced if it exists).")] = Path("runs/fuse"),
    models: Annotated[str | None, typer.Option(help="Comma-separated models (default: all eight).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
) -> None:
    """Train the factor/news/ripple return models, build decile portfolios and the results table."""
    from kgfin.config import load_config
    from kgfin.data import load_market
    from kgfin.fusion.config import FusionConfig

    flags: dict[str, object] = {"seed": seed}
    if models:
        flags["models"] = "[" + ",".join(m.strip() for m in models.split(",") if m.strip()) + "]"
    cfg = load_config(FusionConfig, config, _overrides(flags, set_))
    market = load_market(data)
    ripple_frame, label = _ripple_input(ripple, data, market, cfg)

    from kgfin.fusion.run import run_fusion, write_outputs

    run = run_fusion(market, cfg, ripple=ripple_frame, ripple_label=label, data_dir=data, progress=True)
    write_outputs(run, out, cfg, command="kgfin fuse", extra={"data": data.name})
    table = Table(title=f"test months {run.split_months['test'][0]}..{run.split_months['test'][-1]} "
                        f"(predicting the following month's return)")
    for col in ("model", "ripple", "lora", "LO ann.", "LO Sharpe", "LS ann.", "LS Sharpe", "IC", "IC t", "MAPE"):
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=col == "model")
    for r in run.table.itertuples():
        table.add_row(r.model, "-" if r.ripple == "none" else "yes", "yes" if r.lora else "-",
                      f"{r.lo_annual_return:.1%}", f"{r.lo_sharpe:.2f}", f"{r.ls_annual_return:.1%}", f"{r.ls_sharpe:.2f}",
                      f"{r.ic_mean:.3f}", f"{r.ic_t:.2f}", f"{r.mape:.2f}")
    console.print(table)
    if run.ripple_label:
        console.print(f"ripple input: {run.ripple_label}")
    t = run.timings
    speed = f", {t['headlines_per_second']:.0f} headlines/s" if t["headlines_per_second"] else " (all cached)"
    console.print(f"news: {t['texts']} texts, {t['texts_embedded']} embedded in {t['embed_seconds']:.1f} s{speed}; "
                  f"training {t['train_seconds']:.1f} s; total {t['total_seconds']:.1f} s -> {out}")


def _ripple_input(ripple: str | None, data: Path, market: object, cfg: object) -> tuple[object, str | None]:
    if ripple is None:
        return None, None
    import pandas as pd

    from kgfin.fusion.features import load_ripple
    from kgfin.fusion.ripple import RIPPLE_SOURCES, oracle_ripple, propagation_ripple

    rebalance = cfg.features.rebalance_time
    if ripple == "oracle":
        days = pd.DatetimeIndex(pd.to_datetime(market.returns["date"]).unique())
        return oracle_ripple(data, days, rebalance), RIPPLE_SOURCES["oracle"]
    if ripple == "propagation":
        return propagation_ripple(market, rebalance), RIPPLE_SOURCES["propagation"]
    path = Path(ripple)
    return load_ripple(path), cfg.ripple.source or f"file {path.name}"


@app.command()
def demo(
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Run directory (resumed when it holds an earlier run).")] = Path("runs/demo"),
    profile: Annotated[str, typer.Option(help="default (2-core CPU, <= 30 min), full (paper-sized, GPU) or tiny "
                                              "(tiny random model, a minute): training/demo*.yaml.")] = "default",
    config: Annotated[Path | None, typer.Option(help="A pipeline recipe instead of the profile's.")] = None,
    set_: SetOption = None,
    stage: Annotated[list[str] | None, typer.Option(help="Run only this stage and what it needs (repeatable): "
                                                         "data, graphs, instruct, inject, align, ripple_eval, "
                                                         "fusion, report.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the profile's).")] = None,
) -> None:
    """Run the main job end to end on the embedded store: synthetic market -> graphs -> instruction pairs ->
    knowledge adapters -> alignment -> ripple evaluation -> fusion and decile portfolios -> HTML report.

    Finished stages are recorded in RUN_DIR/pipeline.json and skipped on a re-run with the same settings,
    so an interrupted run resumes where it stopped.
    """
    from kgfin.pipeline import STAGES, load_profile, run_pipeline

    cfg = load_profile(profile, config, _overrides({"seed": seed}, set_))
    console.print(f"[bold]kgfin demo[/bold] ({cfg.profile} profile) -> {run_dir}: align on "
                  f"{', '.join(cfg.align_months)}, evaluate on {', '.join(cfg.eval_months)}; "
                  f"knowledge adapters for {', '.join(cfg.adapter_months())}")
    titles = {s.name: s.title for s in STAGES}

    def show(stage: Any, rec: Any) -> None:
        number = [s.name for s in STAGES].index(stage.name) + 1
        if rec.status == "running":
            console.print(f"[bold]{number}/{len(STAGES)} {stage.title}[/bold] ...")
        elif rec.reused:
            console.print(f"{number}/{len(STAGES)} {stage.title}: done in an earlier run, skipped")
        else:
            console.print(f"{number}/{len(STAGES)} {stage.title}: done in {rec.seconds:.0f} s, "
                          f"peak memory {rec.peak_rss_mb:,.0f} MB")
            if stage.name == "data":
                _print_truth_summary(run_dir / "data")

    result = run_pipeline(cfg, run_dir, stages=stage, on_stage=show)
    table = Table(title=f"kgfin demo: {run_dir}", box=box.SIMPLE)
    for col in ("stage", "status", "wall s", "peak MB", "result"):
        table.add_column(col, justify="right" if col in ("wall s", "peak MB") else "left")
    for rec in result.stages:
        summary = ", ".join(f"{k} {v}" for k, v in rec.summary.items() if k != "path" and v is not None)
        table.add_row(titles[rec.name], rec.status + (" (earlier run)" if rec.reused else ""),
                      "-" if rec.seconds is None else f"{rec.seconds:.0f}",
                      "-" if rec.peak_rss_mb is None else f"{rec.peak_rss_mb:,.0f}", summary)
    console.print(table)
    if (run_dir / "ripple_eval" / "tables.md").exists():
        console.print(f"ripple tables: {run_dir / 'ripple_eval' / 'tables.md'}")
    if result.report is not None:
        console.print(f"report: {result.report}")


def _print_truth_summary(data_dir: Path) -> None:
    import pandas as pd

    snr = pd.read_csv(data_dir / "truth" / "snr_by_event_type.csv")
    table = Table(title="planted events (ground truth)")
    for col in ("event type", "events", "mean |focal shock|", "firms affected", "mean |ripple shock|", "ripple SNR"):
        table.add_column(col, justify="right" if col != "event type" else "left")
    for r in snr.itertuples():
        table.add_row(r.event_type, str(r.events), f"{r.mean_abs_focal_shock:.2%}", f"{r.mean_affected:.1f}",
                      "-" if pd.isna(r.mean_abs_ripple_shock) else f"{r.mean_abs_ripple_shock:.2%}",
                      "-" if pd.isna(r.ripple_snr) else f"{r.ripple_snr:.2f}")
    console.print(table)


# --- graph: company knowledge graphs (kgfin.graph, kgfin.store) ----------------------------------

graph_app = typer.Typer(
    help="Company knowledge graphs: build monthly snapshots into the graph store, query them, export them.",
    no_args_is_help=True,
)
app.add_typer(graph_app, name="graph")

StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="Graph store: a directory for the embedded FalkorDB, or bolt://host:7687 for "
                                 "Neo4j. Default: $KGFIN_GRAPH_URI, then KGFIN_GRAPH_URI in ./.env, then "
                                 ".kgfin/graph under the current directory (so another directory means "
                                 "another store); each command prints the store it used."),
]


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
    config: Annotated[Path | None, typer.Option(help="YAML file with a GraphConfig (see docs/graph.md).")] = None,
    set_: SetOption = None,
) -> None:
    """Build the monthly graphs of DATA_DIR and write them to the store (a month written again is replaced)."""
    from kgfin.config import load_config
    from kgfin.graph import RELATIONS, GraphConfig
    from kgfin.store import build_into_store, open_store

    cfg = load_config(GraphConfig, config, list(set_ or []))
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


# --- instruction pairs and knowledge injection (kgfin.instruct, kgfin.inject) ---------------------

InjectRecipe = Annotated[Path, typer.Option("--config", help="Recipe with instruct / inject / memory_eval sections.")]
MonthsOption = Annotated[list[str], typer.Option("--month", "-m", help="YYYY-MM or YYYY-MM..YYYY-MM (repeatable).")]

evaluate_app = typer.Typer(help="Evaluate: memory accuracy of knowledge adapters, ripple prediction tables.", no_args_is_help=True)
app.add_typer(evaluate_app, name="evaluate")


def _section(overrides: list[str] | None, section: str) -> list[str]:
    """The ``--set section.key=value`` overrides of one recipe section, without the prefix."""
    return [o.split(".", 1)[1] for o in overrides or [] if o.startswith(section + ".")]


def _unknown_sections(overrides: list[str] | None, sections: tuple[str, ...]) -> None:
    bad = [o for o in overrides or [] if o.split(".", 1)[0] not in sections]
    if bad:
        raise CliError(f"--set must name a recipe section ({', '.join(sections)}): {', '.join(bad)}")


def _snapshot_reader(store: str | None) -> tuple[object, object]:
    """(open store, month -> GraphSnapshot | None) over the graph store."""
    from kgfin.store import open_store

    st = open_store(store, create=False)
    err_console.print(f"graph store: {st.describe()}", highlight=False)
    months = set(st.months())
    if not months:
        st.close()
        raise CliError(f"the graph store {st.describe()} holds no months: run `kgfin graph build DATA_DIR` first")
    return st, (lambda m: st.read_snapshot(m) if m in months else None)


@app.command("instruct")
def instruct(
    month: MonthsOption,
    store: StoreOption = None,
    config: InjectRecipe = Path("training/inject.yaml"),
    set_: SetOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for pairs-YYYY-MM.jsonl files.")] = Path("instructions"),
) -> None:
    """Generate instruction pairs from the graph of each MONTH (plus the rotating buffer of earlier months)."""
    from collections import Counter

    from kgfin.config import load_config
    from kgfin.instruct import InstructConfig, training_pairs, write_pairs
    from kgfin.runinfo import write_manifest
    from kgfin.store import expand_months

    _unknown_sections(set_, ("instruct",))
    cfg = load_config(InstructConfig, config, _section(set_, "instruct"), section="instruct")
    st, snapshot_of = _snapshot_reader(store)
    try:
        months = expand_months(month, st.months())
        table = Table(title=f"instruction pairs -> {out}", box=box.SIMPLE)
        for col in ("month", "retrieval", "judgment", "question", "carried", "total"):
            table.add_column(col, justify="left" if col == "month" else "right")
        for m in months:
            pairs = training_pairs(m, snapshot_of, cfg)
            path = write_pairs(pairs, out / f"pairs-{m}.jsonl")
            fam = Counter(p.family for p in pairs if not p.carried)
            table.add_row(m, *(f"{fam[f]:,}" for f in ("retrieval", "judgment", "question")),
                          f"{sum(p.carried for p in pairs):,}", f"{len(pairs):,}")
            console.print(f"wrote {path}", highlight=False)
    finally:
        st.close()
    write_manifest(out, "kgfin instruct", cfg, extra={"months": months})
    console.print(table)


@app.command("inject")
def inject(
    month: Annotated[str, typer.Option("--month", "-m", help="Month YYYY-MM whose adapter to train.")],
    pairs: Annotated[Path | None, typer.Option(help="Pairs JSONL (default: instructions/pairs-MONTH.jsonl).")] = None,
    config: InjectRecipe = Path("training/inject.yaml"),
    set_: SetOption = None,
    adapters: Annotated[Path, typer.Option(help="Folder of month adapters (kg-YYYY-MM/).")] = Path("adapters"),
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last checkpoint.")] = True,
) -> None:
    """Train MONTH's knowledge adapter (LoRA) on its instruction pairs."""
    from kgfin.config import load_config
    from kgfin.inject import InjectConfig, adapter_dir, read_pairs, sha256_file, train_adapter

    _unknown_sections(set_, ("inject",))
    cfg = load_config(InjectConfig, config, _section(set_, "inject"), section="inject")
    path = pairs or Path("instructions") / f"pairs-{month}.jsonl"
    if not path.exists():
        raise CliError(f"{path} not found: run `kgfin instruct --month {month}` first or pass --pairs")
    info = train_adapter(read_pairs(path), adapter_dir(adapters, month), cfg, month=month,
                         pairs_sha256=sha256_file(path), resume=resume)
    table = Table(title=f"knowledge adapter -> {info.path}", box=box.SIMPLE, show_header=False)
    for key, value in (("pairs", f"{info.n_pairs:,}"), ("steps", f"{info.steps:,}"),
                       ("trainable parameters", f"{info.trainable_params:,} ({info.trainable_share:.2%})"),
                       ("seconds per step", f"{info.seconds_per_step:.2f}"), ("tokens per second", f"{info.tokens_per_second:.0f}"),
                       ("peak memory", f"{info.peak_rss_mb:,.0f} MB"), ("final loss", f"{info.final_loss:.4f}" if info.final_loss else "-")):
        table.add_row(key, value)
    console.print(table)


@evaluate_app.command("injection")
def evaluate_injection(
    month: Annotated[str, typer.Option("--month", "-m", help="Month YYYY-MM to test.")],
    store: StoreOption = None,
    switch_month: Annotated[str | None, typer.Option(help="Second month: load both adapters and cross-check.")] = None,
    ablations: Annotated[bool, typer.Option(help="Also train one adapter without each pair family.")] = False,
    config: InjectRecipe = Path("training/inject.yaml"),
    set_: SetOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("runs/injection"),
) -> None:
    """Memory accuracy (FinRipple appendix E.1): subgraph pairs, 8:2 split, exact match / F1 per family."""
    from kgfin.config import load_config
    from kgfin.inject import InjectConfig
    from kgfin.inject.evaluation import MemoryEvalConfig, run_memory_eval
    from kgfin.instruct import InstructConfig

    sections = ("instruct", "inject", "memory_eval")
    _unknown_sections(set_, sections)
    extra = [f"switch_month={switch_month}"] if switch_month else []
    extra += ["ablations=true"] if ablations else []
    mcfg = load_config(MemoryEvalConfig, config, _section(set_, "memory_eval") + extra, section="memory_eval")
    icfg = load_config(InstructConfig, config, _section(set_, "instruct"), section="instruct")
    jcfg = load_config(InjectConfig, config, _section(set_, "inject"), section="inject")
    st, snapshot_of = _snapshot_reader(store)
    try:
        result = run_memory_eval(snapshot_of, month, out / month, mcfg, icfg, jcfg)
    finally:
        st.close()
    table = Table(title=f"memory accuracy, {month} ({out / month})", box=box.SIMPLE)
    for col in ("split", "family", "pairs", "exact match", "F1"):
        table.add_column(col, justify="right" if col in ("pairs", "exact match", "F1") else "left")
    for r in result.table.itertuples():
        table.add_row(r.split, r.family, f"{r.pairs}", f"{r.exact_match:.1%}", f"{r.f1:.1%}")
    console.print(table)
    if result.ablations is not None:
        console.print(result.ablations.to_markdown(index=False, floatfmt=".3f"))
    for key, value in result.switching.items():
        console.print(f"{key}: {value:.3f}")


AdaptersOption = Annotated[Path, typer.Option(help="Folder of knowledge adapters (kg-YYYY-MM/).")]
AlignedOption = Annotated[Path, typer.Option(help="The final/ folder of `kgfin align`.")]


def _news_months(market: Any) -> list[str]:
    """The months (YYYY-MM) that have news, sorted."""
    import pandas as pd

    return sorted({str(p) for p in pd.DatetimeIndex(market.news["timestamp"]).to_period("M")})


def _month_reader(where: str, snapshot_of: Callable[[str], Any], lag: int) -> Callable[[str], Any]:
    """month -> GraphSnapshot from the store at ``where``, with an error that says how to add a missing month."""

    def read(m: str) -> Any:
        snap = snapshot_of(m)
        if snap is None:
            raise CliError(f"the graph store {where} has no month {m} (news is read with the graph {lag} "
                           "month(s) before it): run `kgfin graph build` for it")
        return snap

    return read


@evaluate_app.command("ripple")
def evaluate_ripple(
    month: MonthsOption,
    data: Annotated[Path, typer.Option("--data", "-d", help="Data folder (news, returns, factors; truth/ if synthetic).")] = Path("data/synth"),
    store: StoreOption = None,
    adapters: AdaptersOption = Path("adapters"),
    aligned: AlignedOption = Path("runs/align/final"),
    config: Annotated[Path, typer.Option("--config", help="Evaluation recipe (RippleEvalConfig).")] = Path("training/ripple_eval.yaml"),
    align_config: Annotated[Path, typer.Option(help="Alignment recipe: model, events, reward settings.")] = Path("training/align.yaml"),
    set_: SetOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (tables.md, CSVs, predictions).")] = Path("runs/ripple_eval"),
) -> None:
    """The ripple tables (regressions, ANOVA, refusals, drop-one-relation, long-short, truth) on held-out MONTHs.

    --set align.KEY=V changes the alignment recipe, any other --set KEY=V the evaluation recipe.
    """

    from kgfin.align.config import AlignConfig
    from kgfin.config import load_config
    from kgfin.data import load_market
    from kgfin.evaluate.ripple import RippleEvalConfig, run_ripple_eval, write_ripple_outputs
    from kgfin.store import expand_months

    sets = set_ or []
    acfg = load_config(AlignConfig, align_config if align_config.exists() else None, _section(sets, "align"))
    cfg = load_config(RippleEvalConfig, config if config.exists() else None, [s for s in sets if not s.startswith("align.")])
    market = load_market(data, ["companies", "news", "returns", "factors_daily"])
    st, snapshot_of = _snapshot_reader(store)
    try:
        months = expand_months(month, _news_months(market))
        read = _month_reader(st.describe(), snapshot_of, acfg.events.graph_lag_months)
        result = run_ripple_eval(market, read, months, cfg, acfg, adapters_root=adapters, aligned_dir=aligned,
                                 data_dir=data)
    finally:
        st.close()
    write_ripple_outputs(result, out, cfg, acfg, months)
    console.print(result.to_markdown(), highlight=False)
    console.print(f"tables and predictions -> {out}")


# --- market alignment (kgfin.align) ---------------------------------------------------------


@app.command("align")
def align_cmd(
    month: MonthsOption,
    data: Annotated[Path, typer.Option("--data", "-d", help="Data folder (news, returns, daily factors).")] = Path("data/synth"),
    store: StoreOption = None,
    adapters: AdaptersOption = Path("adapters"),
    config: Annotated[Path, typer.Option("--config", help="Alignment recipe.")] = Path("training/align.yaml"),
    set_: SetOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (log, checkpoints, final/).")] = Path("runs/align"),
    algo: Annotated[str | None, typer.Option(help="ppo (kgfin's), grpo or rloo (TRL's); default: the recipe's.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many PPO steps (resume later).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last checkpoint.")] = True,
) -> None:
    """Align the model with the market (PPO, or TRL's GRPO / RLOO) on the news of each MONTH (knowledge adapters frozen)."""

    from kgfin.align.config import AlignConfig
    from kgfin.align.trainer import align, reward_trend
    from kgfin.config import load_config
    from kgfin.data import load_market
    from kgfin.store import expand_months

    cfg = load_config(AlignConfig, config if config.exists() else None, [*(set_ or []), *([f"algo={algo}"] if algo else [])])
    market = load_market(data, ["companies", "news", "returns", "factors_daily"])
    st, snapshot_of = _snapshot_reader(store)
    try:
        months = expand_months(month, _news_months(market))
        read = _month_reader(st.describe(), snapshot_of, cfg.events.graph_lag_months)
        result = align(cfg, market, read, months, out, adapters, resume=resume, max_steps=max_steps)
    finally:
        st.close()
    if result.log.empty:
        console.print("no PPO steps were run")
        return
    first, last = reward_trend(result.log)
    table = Table(title=f"alignment ({cfg.algo}) -> {out}", box=box.SIMPLE, show_header=False)
    for key, value in (("steps", f"{result.steps:,}"), ("months", f"{months[0]}..{months[-1]}"),
                       ("mean reward, first / last quarter", f"{first:.3f} / {last:.3f}"),
                       ("refusal rate, last quarter", f"{result.log['refusal_rate'].tail(max(1, len(result.log) // 4)).mean():.1%}"),
                       ("seconds per step", f"{result.log['seconds'].mean():.1f}"),
                       ("final", str(result.final) if result.final.exists() else "not yet (run again to resume)")):
        table.add_row(key, value)
    console.print(table)


@app.command("predict")
def predict(
    events: Annotated[Path, typer.Option("--events", "-e", help="News file (CSV/Parquet: id, timestamp, tickers, headline, body).")],
    data: Annotated[Path, typer.Option("--data", "-d", help="Data folder (companies, returns, daily factors; news too "
                                                            "with calibrate_impact_type).")] = Path("data/synth"),
    store: StoreOption = None,
    method: Annotated[str, typer.Option(help="aligned, knowledge, zero_shot or rag.")] = "aligned",
    adapters: AdaptersOption = Path("adapters"),
    aligned: AlignedOption = Path("runs/align/final"),
    config: Annotated[Path, typer.Option("--config", help="Alignment recipe: model, events, reward settings.")] = Path("training/align.yaml"),
    set_: SetOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON file for the predictions.")] = Path("runs/predictions.json"),
    max_new_tokens: Annotated[int, typer.Option(help="Answer length limit.")] = 160,
) -> None:
    """Per news event: the companies the model names, their scores, the propagated Z and the graph paths."""
    import json

    import pandas as pd

    from kgfin.align.config import AlignConfig
    from kgfin.align.events import events_from_news
    from kgfin.align.impact_reward import build_impact_reward
    from kgfin.align.predict import ModelVariant, embedding_similarity, predict_events
    from kgfin.config import load_config
    from kgfin.data import load_market
    from kgfin.data.loaders import load_news

    if method not in ("aligned", "knowledge", "zero_shot", "rag"):
        raise CliError(f"--method {method!r}: choose aligned, knowledge, zero_shot or rag")
    cfg = load_config(AlignConfig, config if config.exists() else None, set_ or [])
    market = load_market(data, ["companies", "returns", "factors_daily",
                                *(["news"] if cfg.calibrate_impact_type else [])])
    news = load_news(events, set(market.companies["ticker"]))
    days = pd.DatetimeIndex(sorted(market.returns["date"].unique()))
    frame = events_from_news(news, days, cfg.events, keep_unpriced=True)
    calibration = None
    if cfg.calibrate_impact_type:
        from kgfin.align.calibration import calibration_events

        calibration = calibration_events(market, sorted(frame["month"].unique()), cfg.events, cfg.calibration_events)
    st, snapshot_of = _snapshot_reader(store)
    try:
        read = _month_reader(st.describe(), snapshot_of, cfg.events.graph_lag_months)
        reward, frame = build_impact_reward(frame, market, read, cfg.impact, require_outcome=False,
                                            prefix=cfg.answer_prefix)
        rag = None
        if method == "rag":
            from kgfin.fusion.embeddings import NewsEmbedder

            embedder = NewsEmbedder()
            rag = embedding_similarity(lambda texts: embedder.embed(texts, progress=False))
        preds = predict_events(ModelVariant(method, aligned_dir=aligned), frame, reward, read, cfg, adapters,
                               max_new_tokens=max_new_tokens, rag_scores=rag, with_paths=True, progress=True,
                               calibration=calibration)
    finally:
        st.close()
    tickers = list(reward.tickers)
    records = []
    table = Table(title=f"ripple predictions ({method}) -> {out}", box=box.SIMPLE)
    for col in ("event", "company", "named score", "Z", "through"):
        table.add_column(col, justify="right" if col in ("named score", "Z") else "left")
    for p in preds:
        z = {tickers[j]: float(p.scored.z[j]) for j in range(len(tickers)) if p.scored.z[j] != 0}
        records.append({"event_id": p.event_id, "graph_month": p.graph_month, "refused": p.scored.refused,
                        "reason": p.scored.impacts.reason, "named": p.scored.impacts.scores, "z": z,
                        "paths": p.paths, "answer": p.completion})
        if p.scored.refused:
            table.add_row(p.event_id, f"refused: {p.scored.impacts.reason}", "", "", "")
        for t, paths in p.paths.items():
            named_score = p.scored.impacts.scores.get(t)
            table.add_row(p.event_id, t, "" if named_score is None else f"{named_score:g}", f"{z.get(t, 0.0):+.4f}",
                          "; ".join(paths))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(records, indent=1))
    console.print(table)


@app.command("report")
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder with any of data/, graph/, align/, ripple_eval/, fusion/.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file (default RUN_DIR/report.html).")] = None,
    max_events: Annotated[int, typer.Option(help="Events with a section of their own (strongest ripples first).")] = 10,
) -> None:
    """Write the self-contained HTML ripple-analysis report of a run folder."""
    from kgfin.report import build_report

    path = build_report(run_dir, out, max_events=max_events)
    console.print(f"report: {path}")


def main() -> None:
    """Console-script entry point: expected errors become one-line messages, exit code 2."""
    import warnings

    # transformers' own deprecation notice, raised from inside transformers/PEFT on every model load
    warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)
    try:
        app()
    except (KgfinError, FileNotFoundError) as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        err_console.print("interrupted: re-run the same command to resume (finished stages and months are kept)")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
