"""The ``kgfin`` command line: parses arguments, calls the library, prints a summary.

Heavy libraries are imported inside the commands so that ``kgfin --help`` is instant.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
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
    typer.Option("--set", help="Override any config field: --set events.rate=0.3 (repeatable)."),
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
) -> None:
    """Check every table in DATA_DIR; report all problems (file, rows, column) and exit 1 if any."""
    from kgfin.data import validate_dir
    from kgfin.data.loaders import SUFFIXES
    from kgfin.data.schemas import TABLES

    problems = validate_dir(data_dir)
    present = [n for n in TABLES if any((data_dir / f"{n}{s}").exists() for s in SUFFIXES)]
    if problems:
        err_console.print(f"[red]{len(problems)} problem(s) in {data_dir}:[/red]")
        for p in problems:
            err_console.print(f"  - {p}", markup=False, highlight=False, soft_wrap=True)
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


@app.command("demo")
def demo(
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Where the demo writes its outputs.")] = Path("runs/demo"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Run the main job on the embedded default (the stages built so far)."""
    from kgfin.config import load_config
    from kgfin.data import validate_dir
    from kgfin.data.synth import SynthConfig, synthesize
    from kgfin.runinfo import MANIFEST_NAME, read_manifest

    console.print("[bold]kgfin demo[/bold] - stages built so far: synthetic market, data validation.")
    console.print("Not built yet: knowledge graphs, instruction pairs, knowledge injection, alignment, "
                  "ripple evaluation, backtests, report. Fusion models run separately: "
                  f"kgfin fuse --data {run_dir / 'data'}")
    cfg = load_config(SynthConfig, overrides={"seed": seed})
    data_dir = run_dir / "data"
    if (data_dir / MANIFEST_NAME).exists() and read_manifest(data_dir)["config"] == cfg.model_dump(mode="json"):
        console.print(f"1. synthetic market: already in {data_dir} (same config), skipped")
    else:
        summary = synthesize(cfg, data_dir, overwrite=True)
        console.print(f"1. synthetic market: {cfg.companies} companies x {cfg.months} months -> {data_dir} "
                      f"({summary.seconds:.1f} s)")
    problems = validate_dir(data_dir)
    if problems:
        raise CliError(f"generated data failed validation: {problems[0]}")
    console.print(f"2. validation: all tables in {data_dir} pass")
    _print_truth_summary(data_dir)


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


def main() -> None:
    """Console-script entry point: expected errors become one-line messages, exit code 2."""
    try:
        app()
    except (KgfinError, FileNotFoundError) as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
