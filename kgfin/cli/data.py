"""Input data: the synthetic market, validation, importers of public sources (``kgfin data ...``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kgfin.cli._app import (
    CliError,
    RecipeOption,
    SetOption,
    app,
    configs,
    console,
    err_console,
    overrides,
)

data_app = typer.Typer(help="Input data: generate the synthetic market, validate a data directory, import public "
                                "sources.", no_args_is_help=True)
app.add_typer(data_app, name="data")


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

    cfg = configs({"synth": SynthConfig}, config, overrides(
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
