"""Instruction pairs, knowledge adapters and their memory accuracy (``kgfin instruct``, ``inject``, ``evaluate injection``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from kgfin.cli._app import (
    CliError,
    MonthsOption,
    RecipeOption,
    SetOption,
    StoreOption,
    app,
    configs,
    console,
    evaluate_app,
    reading_store,
)


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
    from kgfin.store import expand_months, stored_snapshots

    cfg = configs({"instruct": InstructConfig}, config, list(set_ or []))["instruct"]
    with reading_store(store) as st:
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

    cfg = configs({"inject": InjectConfig}, config, list(set_ or []))["inject"]
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
    from kgfin.store import stored_snapshots

    extra = [f"switch_month={switch_month}"] if switch_month else []
    extra += ["ablations=true"] if ablations else []
    cfgs = configs({"memory_eval": MemoryEvalConfig, "instruct": InstructConfig, "inject": InjectConfig}, config,
                    [*extra, *(set_ or [])])
    mcfg, icfg, jcfg = cfgs["memory_eval"], cfgs["instruct"], cfgs["inject"]
    with reading_store(store) as st:
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
