"""Market alignment, ripple prediction and the ripple evaluation (``kgfin align``, ``predict``, ``evaluate ripple``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from kgfin.cli._app import (
    AdaptersOption,
    AlignedOption,
    MonthsOption,
    RecipeOption,
    SetOption,
    StoreOption,
    app,
    configs,
    console,
    evaluate_app,
    overrides,
    reading_store,
)


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
    """The ripple evaluation of held-out MONTHs: the v2 table first (every method on the same candidates, rank IC
    with 95 % CIs, paired tests, power, long-short on ripple scores), then the paper-analogue tables (regressions,
    ANOVA, refusals, drop-one-relation, long-short, truth).

    Reads the recipe's ripple_eval and align sections (model, events, decoding, reward); --set align.KEY=V
    changes the align section, any other --set KEY=V the ripple_eval section.
    """

    from kgfin.align.config import AlignConfig
    from kgfin.data import load_market
    from kgfin.data.calendar import months_of
    from kgfin.evaluate.ripple import RippleEvalConfig, run_ripple_eval, write_ripple_outputs
    from kgfin.store import expand_months, required_snapshots

    cfgs = configs({"ripple_eval": RippleEvalConfig, "align": AlignConfig}, config, list(set_ or []))
    cfg, acfg = cfgs["ripple_eval"], cfgs["align"]
    market = load_market(data, ["companies", "news", "returns", "factors_daily"])
    months = expand_months(month, months_of(market.news["timestamp"]))
    with reading_store(store) as st:
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
    max_steps: Annotated[int | None, typer.Option(
        help="Stop after this many PPO steps (resume later; 0: the warm start alone).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last checkpoint.")] = True,
) -> None:
    """Align the model with the market (PPO, or TRL's GRPO / RLOO) on the news of each MONTH (knowledge adapters frozen)."""

    from kgfin.align.config import AlignConfig
    from kgfin.align.trainer import align, reward_trend
    from kgfin.data import load_market
    from kgfin.data.calendar import months_of
    from kgfin.evaluate.teacher import warm_start_teacher
    from kgfin.store import expand_months, required_snapshots

    cfg = configs({"align": AlignConfig}, config, overrides({"algo": algo}, set_))["align"]
    market = load_market(data, ["companies", "news", "returns", "factors_daily"])
    months = expand_months(month, months_of(market.news["timestamp"]))
    with reading_store(store) as st:
        read = required_snapshots(st, cfg.events.graph_lag_months)
        result = align(cfg, market, read, months, out, adapters, resume=resume, max_steps=max_steps,
                       warm_start_teacher=warm_start_teacher(cfg, market, read, data))
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
    from kgfin.store import required_snapshots

    cfg = configs({"align": AlignConfig}, config, list(set_ or []))["align"]
    market = load_market(data, ["companies", "returns", "factors_daily",
                                *(["news"] if cfg.decoding.calibrate_impact_type else [])])
    news = load_news(events, set(market.companies["ticker"]))
    with reading_store(store) as st:
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


# --- ripple-score tables (kgfin.evaluate.scores) --------------------------------------------


ripple_app = typer.Typer(help="Ripple-score tables from any registered predictor (the fusion models' ripple input).",
                         no_args_is_help=True)
app.add_typer(ripple_app, name="ripple")


@ripple_app.command("scores")
def ripple_scores_cmd(
    month: MonthsOption,
    data: Annotated[Path, typer.Option("--data", "-d", help="Data folder (news, returns, daily factors; truth/ if synthetic).")] = Path("data/synth"),
    store: StoreOption = None,
    predictor: Annotated[str | None, typer.Option(help="Registered predictor (aligned, knowledge, propagation_only, "
                                                       "gnn, oracle, ...); default: the recipe's.")] = None,
    adapters: AdaptersOption = Path("adapters"),
    aligned: AlignedOption = Path("runs/align/final"),
    aligned_month: Annotated[list[str] | None, typer.Option(
        "--aligned-month", help="News months the aligned model was trained on (recorded as in-sample).")] = None,
    config: RecipeOption = None,
    set_: SetOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (monthly / daily / events Parquet + metadata).")] = Path("runs/ripple_scores"),
) -> None:
    """Score every news item of each MONTH with one predictor and write the month x ticker and day x ticker
    ripple-score tables (point in time; the predictor and adapter in each table's metadata). Feed the folder to
    `kgfin fuse --ripple OUT`.

    Reads the recipe's ripple_scores and align sections; --set align.KEY=V changes the align section, any other
    --set KEY=V the ripple_scores section.
    """
    from kgfin.align.config import AlignConfig
    from kgfin.data import load_market
    from kgfin.data.calendar import months_of
    from kgfin.evaluate.scores import RippleScoresConfig, ripple_scores
    from kgfin.store import expand_months

    cfgs = configs({"ripple_scores": RippleScoresConfig, "align": AlignConfig}, config,
                   overrides({"predictor": predictor}, set_))
    cfg, acfg = cfgs["ripple_scores"], cfgs["align"]
    market = load_market(data, ["companies", "news", "returns", "factors_daily"])
    months = expand_months(month, months_of(market.news["timestamp"]))
    with reading_store(store) as st:
        res = ripple_scores(market, st.read_snapshot, months, cfg, acfg, adapters_root=adapters, aligned_dir=aligned,
                            aligned_months=expand_months(aligned_month, months_of(market.news["timestamp"])) if aligned_month else (),
                            data_dir=data)
    res.write(out)
    table = Table(title=f"ripple scores ({cfg.predictor}) -> {out}", box=box.SIMPLE, show_header=False)
    meta = res.metadata
    for key, value in (("months", f"{months[0]}..{months[-1]} ({len(months)})"),
                       ("news items scored", f"{meta['events_scored']:,}"),
                       ("month x ticker rows", f"{len(res.monthly):,}"), ("day x ticker rows", f"{len(res.daily):,}"),
                       ("adapter", str(meta.get("adapter") or "-")),
                       *((k, f"{v:,}") for k, v in meta["counts"].items()),
                       ("seconds", f"{meta['seconds']['total']:.1f}")):
        table.add_row(key, value)
    console.print(table)
