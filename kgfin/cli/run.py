"""Whole runs: the pipeline, the fusion study and the report (``kgfin demo``, ``fuse``, ``report``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from kgfin.cli._app import (
    RecipeOption,
    SetOption,
    app,
    configs,
    console,
    overrides,
)


@app.command("fuse")
def fuse(
    data: Annotated[Path, typer.Option("--data", "-d", help="Data directory (stock_factors, returns, news).")] = Path("data/synth"),
    config: RecipeOption = None,
    set_: SetOption = None,
    ripple: Annotated[str | None, typer.Option(
        "--ripple", help="Ripple scores: a `kgfin ripple scores` folder, a Parquet/CSV file (month, ticker, ripple), or 'oracle' (synthetic truth: "
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
    cfg = configs({"fusion": FusionConfig}, config, overrides(flags, set_))["fusion"]
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
                                                         "ripple_scores, fusion, report.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the profile's).")] = None,
) -> None:
    """Run the main job end to end on the embedded store: synthetic market -> graphs -> instruction pairs ->
    knowledge adapters -> alignment -> ripple evaluation -> the aligned model's ripple-score table -> fusion and
    decile portfolios -> HTML report.

    Finished stages are recorded in RUN_DIR/pipeline.json and skipped on a re-run with the same settings,
    so an interrupted run resumes where it stopped.
    """
    from kgfin.pipeline import STAGES, load_profile, run_pipeline

    cfg = load_profile(profile, config, overrides({"seed": seed}, set_))
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
