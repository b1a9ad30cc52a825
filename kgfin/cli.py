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


RecipeOption = Annotated[
    list[Path] | None,
    typer.Option("--config", help="Recipe (YAML; repeatable, later files win): the command reads its own sections "
                                  "from it, e.g. kgfin/recipes/demo.yaml or the command's kgfin/recipes/*.yaml. "
                                  "Default: the config defaults (docs/pipeline.md, Recipes)."),
]


def _overrides(flags: dict[str, object], extra: list[str] | None) -> list[str]:
    return [f"{k}={v}" for k, v in flags.items() if v is not None] + list(extra or [])


def _configs(classes: dict[str, Any], recipes: list[Path] | None, overrides: list[str]) -> dict[str, Any]:
    """The command's sections (the first is its own) from ``recipes`` and ``--set`` overrides (kgfin.config)."""
    from kgfin.config import load_sections
    from kgfin.pipeline import RECIPE_KEYS

    return load_sections(classes, recipes or [], overrides, RECIPE_KEYS)


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("data/synth"),
    companies: Annotated[int | None, typer.Option(help="Number of companies (default 120).")] = None,
    months: Annotated[int | None, typer.Option(help="Number of months (default 36).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    start: Annotated[str | None, typer.Option(help="First month YYYY-MM (default 2014-01).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="parquet or csv (default parquet).")] = None,
    config: RecipeOption = None,
    set_: SetOption = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output directory.")] = False,
) -> None:
    """Generate the synthetic market (tables + ground truth) into OUT."""
    from kgfin.data.synth import SynthConfig, synthesize

    cfg = _configs({"synth": SynthConfig}, config, _overrides(
        {"companies": companies, "months": months, "seed": seed, "start": start, "format": fmt}, set_))["synth"]
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


# --- kgfin data import SOURCE: public sources -> kgfin tables (kgfin.data.importers) -------------

import_app = typer.Typer(help="Import public sources (SEC 13F and insider data sets, PatentsView, Kenneth French, "
                              "news, prices, supply links) as validated kgfin tables.", no_args_is_help=True)
data_app.add_typer(import_app, name="import")

ImportOut = Annotated[Path, typer.Option("--out", "-o", help="Data directory to write the table into.")]
ImportCompanies = Annotated[Path | None, typer.Option("--companies", help="Companies table (default: the one in --out).")]
ImportFormat = Annotated[str, typer.Option("--format", "-f", help="csv or parquet.")]


def _run_import(call: Callable[[], Any]) -> None:
    """Run one importer; print its report, or every input problem and exit 1."""
    from kgfin.data import DataValidationError

    try:
        report = call()
    except DataValidationError as exc:
        err_console.print(f"[red]{len(exc.problems)} problem(s) in the input; nothing written:[/red]")
        for p in exc.problems:
            err_console.print(f"  - {p}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(report.summary(), markup=False, highlight=False, soft_wrap=True)


@import_app.command("13f")
def import_13f_cmd(
    datasets: Annotated[list[Path], typer.Argument(help="Form 13F data sets: folders or the SEC's quarterly zip files.")],
    identifier_map: Annotated[Path, typer.Option("--map", help="CSV: cusip (or cusip8), ticker [, permno, start, end].")],
    out: ImportOut = Path("data/imported"),
    companies: ImportCompanies = None,
    id_column: Annotated[str, typer.Option("--id-column", help="Map column holding kgfin's identifier.")] = "ticker",
    hold_months: Annotated[int, typer.Option("--hold-months", help="Months a filing stands until the next.")] = 3,
    fmt: ImportFormat = "csv",
) -> None:
    """SEC Form 13F -> fund_holdings (dated by filing date; options and debt left out)."""
    from kgfin.data.importers import import_13f

    _run_import(lambda: import_13f(datasets, identifier_map, out, companies=companies, id_column=id_column,
                                   hold_months=hold_months, fmt=fmt))


@import_app.command("insiders")
def import_insiders_cmd(
    datasets: Annotated[list[Path], typer.Argument(help="Insider (Forms 3/4/5) data sets: folders or zip files.")],
    out: ImportOut = Path("data/imported"),
    companies: ImportCompanies = None,
    issuer_map: Annotated[Path | None, typer.Option("--issuer-map", help="CSV: issuer_cik, ticker.")] = None,
    fmt: ImportFormat = "csv",
) -> None:
    """SEC insider data sets -> board_seats (directors, first to last filing date)."""
    from kgfin.data.importers import import_insiders

    _run_import(lambda: import_insiders(datasets, out, companies=companies, issuer_map=issuer_map, fmt=fmt))


@import_app.command("patentsview")
def import_patentsview_cmd(
    directory: Annotated[Path, typer.Argument(help="Folder with g_patent, g_cpc_current, g_assignee_disambiguated (.tsv or .tsv.zip).")],
    name_map: Annotated[Path, typer.Option("--name-map", help="CSV: organization, ticker [, assignee_id].")],
    out: ImportOut = Path("data/imported"),
    companies: ImportCompanies = None,
    level: Annotated[str, typer.Option("--level", help="CPC level: subclass or group.")] = "subclass",
    fmt: ImportFormat = "csv",
) -> None:
    """PatentsView bulk files -> patents (grant date, CPC classes)."""
    from kgfin.data.importers import import_patentsview, patentsview_files

    _run_import(lambda: import_patentsview(*patentsview_files(directory), name_map, out, companies=companies,
                                           level=level, fmt=fmt))


@import_app.command("french")
def import_french_cmd(
    file: Annotated[Path, typer.Argument(help="A Kenneth French factor CSV (or its zip), daily or monthly.")],
    out: ImportOut = Path("data/imported"),
    fmt: ImportFormat = "csv",
) -> None:
    """Fama-French factors -> factors_daily or factors_monthly (percent to decimal)."""
    from kgfin.data.importers import import_french_factors

    _run_import(lambda: import_french_factors(file, out, fmt=fmt))


@import_app.command("news")
def import_news_cmd(
    files: Annotated[list[Path], typer.Argument(help="FNSPID-style .csv and/or .jsonl (date, ticker, headline[, body]).")],
    out: ImportOut = Path("data/imported"),
    companies: ImportCompanies = None,
    timezone: Annotated[str, typer.Option("--timezone", help="Exchange time zone.")] = "America/New_York",
    fmt: ImportFormat = "csv",
) -> None:
    """News -> news (exchange-local timestamps, one item per article)."""
    from kgfin.data.importers import import_news

    _run_import(lambda: import_news(files, out, companies=companies, timezone=timezone, fmt=fmt))


@import_app.command("prices")
def import_prices_cmd(
    files: Annotated[list[Path], typer.Argument(help="Long (date, ticker, ret or adjusted close) or wide (date, ticker columns) CSVs.")],
    out: ImportOut = Path("data/imported"),
    companies: ImportCompanies = None,
    price_column: Annotated[str, typer.Option("--price-column", help="Adjusted-close column of long files.")] = "adj_close",
    fmt: ImportFormat = "csv",
) -> None:
    """Prices -> returns (daily simple returns)."""
    from kgfin.data.importers import import_prices

    _run_import(lambda: import_prices(files, out, companies=companies, price_column=price_column, fmt=fmt))


@import_app.command("supply-links")
def import_supply_links_cmd(
    file: Annotated[Path, typer.Argument(help="CSV: supplier, customer, start, end [, value_usd, source].")],
    out: ImportOut = Path("data/imported"),
    companies: ImportCompanies = None,
    until: Annotated[str | None, typer.Option("--until", help="YYYY-MM that open links run to (default: latest date in the file).")] = None,
    fmt: ImportFormat = "csv",
) -> None:
    """Customer-supplier links -> supply_links (one row per active month)."""
    from kgfin.data.importers import import_supply_links

    _run_import(lambda: import_supply_links(file, out, companies=companies, until=until, fmt=fmt))


@app.command("fuse")
def fuse(
    data: Annotated[Path, typer.Option("--data", "-d", help="Data directory (stock_factors, returns, news).")] = Path("data/synth"),
    config: RecipeOption = None,
    set_: SetOption = None,
    ripple: Annotated[str | None, typer.Option(
        "--ripple", help="Ripple scores: a Parquet/CSV file (month, ticker, ripple), or 'oracle' (synthetic truth: "
                         "perfect ripple knowledge) or 'propagation' (observable baseline). Omit to train without ripple.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (replaced if it exists).")] = Path("runs/fuse"),
    models: Annotated[str | None, typer.Option(help="Comma-separated models (default: all eight).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
) -> None:
    """Train the factor/news/ripple return models, build decile portfolios and the results table."""
    from kgfin.data import load_market
    from kgfin.fusion.config import FusionConfig
    from kgfin.fusion.ripple import ripple_input

    flags: dict[str, object] = {"seed": seed}
    if models:
        flags["models"] = "[" + ",".join(m.strip() for m in models.split(",") if m.strip()) + "]"
    cfg = _configs({"fusion": FusionConfig}, config, _overrides(flags, set_))["fusion"]
    market = load_market(data)
    ripple_frame, label = ripple_input(ripple, data, market, cfg)

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


@app.command()
def demo(
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Run directory (resumed when it holds an earlier run).")] = Path("runs/demo"),
    profile: Annotated[str, typer.Option(help="default (2-core CPU, <= 30 min), full (paper-sized, GPU) or tiny "
                                              "(tiny random model, a minute): kgfin/recipes/demo*.yaml.")] = "default",
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
    config: RecipeOption = None,
    set_: SetOption = None,
) -> None:
    """Build the monthly graphs of DATA_DIR and write them to the store (a month written again is replaced)."""
    from kgfin.graph import RELATIONS, GraphConfig
    from kgfin.store import build_into_store, open_store

    cfg = _configs({"graph": GraphConfig}, config, list(set_ or []))["graph"]
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

MonthsOption = Annotated[list[str], typer.Option("--month", "-m", help="YYYY-MM or YYYY-MM..YYYY-MM (repeatable).")]

evaluate_app = typer.Typer(help="Evaluate: memory accuracy of knowledge adapters, ripple prediction tables.", no_args_is_help=True)
app.add_typer(evaluate_app, name="evaluate")


@app.command("instruct")
def instruct(
    month: MonthsOption,
    store: StoreOption = None,
    config: RecipeOption = None,
    set_: SetOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for pairs-YYYY-MM.jsonl files.")] = Path("instructions"),
) -> None:
    """Generate instruction pairs from the graph of each MONTH (plus the rotating buffer of earlier months)."""
    from collections import Counter

    from kgfin.instruct import InstructConfig, training_pairs, write_pairs
    from kgfin.runinfo import write_manifest
    from kgfin.store import expand_months, open_store, stored_snapshots

    cfg = _configs({"instruct": InstructConfig}, config, list(set_ or []))["instruct"]
    with open_store(store) as st:
        snapshot_of = stored_snapshots(st)
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
    write_manifest(out, "kgfin instruct", cfg, extra={"months": months})
    console.print(table)


@app.command("inject")
def inject(
    month: Annotated[str, typer.Option("--month", "-m", help="Month YYYY-MM whose adapter to train.")],
    pairs: Annotated[Path | None, typer.Option(help="Pairs JSONL (default: instructions/pairs-MONTH.jsonl).")] = None,
    config: RecipeOption = None,
    set_: SetOption = None,
    adapters: Annotated[Path, typer.Option(help="Folder of month adapters (kg-YYYY-MM/).")] = Path("adapters"),
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last checkpoint.")] = True,
) -> None:
    """Train MONTH's knowledge adapter (LoRA) on its instruction pairs."""
    from kgfin.inject import InjectConfig, adapter_dir, read_pairs, sha256_file, train_adapter

    cfg = _configs({"inject": InjectConfig}, config, list(set_ or []))["inject"]
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
    config: RecipeOption = None,
    set_: SetOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("runs/injection"),
) -> None:
    """Memory accuracy (FinRipple appendix E.1): subgraph pairs, 8:2 split, exact match / F1 per family."""
    from kgfin.inject import InjectConfig
    from kgfin.inject.evaluation import MemoryEvalConfig, run_memory_eval
    from kgfin.instruct import InstructConfig
    from kgfin.store import open_store, stored_snapshots

    extra = [f"switch_month={switch_month}"] if switch_month else []
    extra += ["ablations=true"] if ablations else []
    cfgs = _configs({"memory_eval": MemoryEvalConfig, "instruct": InstructConfig, "inject": InjectConfig}, config,
                    [*extra, *(set_ or [])])
    mcfg, icfg, jcfg = cfgs["memory_eval"], cfgs["instruct"], cfgs["inject"]
    with open_store(store) as st:
        result = run_memory_eval(stored_snapshots(st), month, out / month, mcfg, icfg, jcfg)
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


@evaluate_app.command("ripple")
def evaluate_ripple(
    month: MonthsOption,
    data: Annotated[Path, typer.Option("--data", "-d", help="Data folder (news, returns, factors; truth/ if synthetic).")] = Path("data/synth"),
    store: StoreOption = None,
    adapters: AdaptersOption = Path("adapters"),
    aligned: AlignedOption = Path("runs/align/final"),
    config: RecipeOption = None,
    set_: SetOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (tables.md, CSVs, predictions).")] = Path("runs/ripple_eval"),
) -> None:
    """The ripple tables (regressions, ANOVA, refusals, drop-one-relation, long-short, truth) on held-out MONTHs.

    Reads the recipe's ripple_eval and align sections (model, events, decoding, reward); --set align.KEY=V
    changes the align section, any other --set KEY=V the ripple_eval section.
    """

    from kgfin.align.config import AlignConfig
    from kgfin.data import load_market
    from kgfin.data.calendar import months_of
    from kgfin.evaluate.ripple import RippleEvalConfig, run_ripple_eval, write_ripple_outputs
    from kgfin.store import expand_months, open_store, required_snapshots

    cfgs = _configs({"ripple_eval": RippleEvalConfig, "align": AlignConfig}, config, list(set_ or []))
    cfg, acfg = cfgs["ripple_eval"], cfgs["align"]
    market = load_market(data, ["companies", "news", "returns", "factors_daily"])
    months = expand_months(month, months_of(market.news["timestamp"]))
    with open_store(store) as st:
        read = required_snapshots(st, acfg.events.graph_lag_months)
        result = run_ripple_eval(market, read, months, cfg, acfg, adapters_root=adapters, aligned_dir=aligned,
                                 data_dir=data)
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
    config: RecipeOption = None,
    set_: SetOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (log, checkpoints, final/).")] = Path("runs/align"),
    algo: Annotated[str | None, typer.Option(help="ppo (kgfin's), grpo or rloo (TRL's); default: the recipe's.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many PPO steps (resume later).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last checkpoint.")] = True,
) -> None:
    """Align the model with the market (PPO, or TRL's GRPO / RLOO) on the news of each MONTH (knowledge adapters frozen)."""

    from kgfin.align.config import AlignConfig
    from kgfin.align.trainer import align, reward_trend
    from kgfin.data import load_market
    from kgfin.data.calendar import months_of
    from kgfin.store import expand_months, open_store, required_snapshots

    cfg = _configs({"align": AlignConfig}, config, _overrides({"algo": algo}, set_))["align"]
    market = load_market(data, ["companies", "news", "returns", "factors_daily"])
    months = expand_months(month, months_of(market.news["timestamp"]))
    with open_store(store) as st:
        read = required_snapshots(st, cfg.events.graph_lag_months)
        result = align(cfg, market, read, months, out, adapters, resume=resume, max_steps=max_steps)
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
    config: RecipeOption = None,
    set_: SetOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON file for the predictions.")] = Path("runs/predictions.json"),
    max_new_tokens: Annotated[int, typer.Option(help="Answer length limit.")] = 160,
) -> None:
    """Per news event: the companies the model names, their scores, the propagated Z and the graph paths."""
    import json

    from kgfin.align.config import AlignConfig
    from kgfin.align.predict import predict_news, prediction_records
    from kgfin.data import load_market
    from kgfin.data.loaders import load_news
    from kgfin.store import open_store, required_snapshots

    cfg = _configs({"align": AlignConfig}, config, list(set_ or []))["align"]
    market = load_market(data, ["companies", "returns", "factors_daily",
                                *(["news"] if cfg.decoding.calibrate_impact_type else [])])
    news = load_news(events, set(market.companies["ticker"]))
    with open_store(store) as st:
        read = required_snapshots(st, cfg.events.graph_lag_months)
        preds, tickers = predict_news(news, market, read, cfg, method, adapters, aligned,  # type: ignore[arg-type]
                                      max_new_tokens=max_new_tokens, progress=True)
    records = prediction_records(preds, tickers)
    table = Table(title=f"ripple predictions ({method}) -> {out}", box=box.SIMPLE)
    for col in ("event", "company", "named score", "Z", "through"):
        table.add_column(col, justify="right" if col in ("named score", "Z") else "left")
    for rec in records:
        if rec["refused"]:
            table.add_row(rec["event_id"], f"refused: {rec['reason']}", "", "", "")
        for t, paths in rec["paths"].items():
            named_score = rec["named"].get(t)
            table.add_row(rec["event_id"], t, "" if named_score is None else f"{named_score:g}",
                          f"{rec['z'].get(t, 0.0):+.4f}", "; ".join(paths))
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
