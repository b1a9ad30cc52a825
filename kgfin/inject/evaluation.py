"""Memory accuracy of a month's knowledge adapter, after FinRipple appendix E.1.

Protocol: take a random subgraph of ``subgraph_nodes`` companies of month A, generate its
instruction pairs, split them 8:2 (within each family) into *covered* pairs (trained on)
and *held-out* pairs, train A's adapter on the covered pairs and score every pair (exact
match; F1 for list answers). Optional extras:

* **ablations**: one adapter per family left out of training, scored on all covered pairs;
* **month switching**: month B's adapter, trained the same way, loaded beside A's on one
  base; A's facts asked with each adapter (A's adapter should know them, B's should not),
  and the time to switch adapters.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from kgfin.config import KgfinConfig
from kgfin.graph import GraphSnapshot
from kgfin.inject.adapters import attach_adapters
from kgfin.inject.config import InjectConfig
from kgfin.inject.memory import accuracy_table, memory_accuracy
from kgfin.inject.trainer import AdapterInfo, adapter_dir, train_adapter
from kgfin.instruct import FAMILIES, InstructConfig, generate_pairs
from kgfin.runinfo import write_manifest

__all__ = ["MemoryEvalConfig", "MemoryEvalResult", "run_memory_eval", "split_pairs"]

log = logging.getLogger(__name__)


class MemoryEvalConfig(KgfinConfig):
    """The memory-accuracy experiment."""

    subgraph_nodes: int = Field(100, ge=2, description="companies in the random subgraph the pairs are about")
    max_pairs_per_family: int | None = Field(50, ge=1, description="cap on generated pairs per family")
    train_share: float = Field(0.8, gt=0, lt=1, description="share of each family's pairs used for training (covered)")
    ablations: bool = Field(False, description="also train one adapter without each family")
    switch_month: str | None = Field(None, description="a second month whose adapter is loaded beside the first")
    batch_size: int = Field(16, ge=1, description="generation batch size when scoring")
    max_new_tokens: int = Field(64, ge=1, description="answer length limit when scoring")
    seed: int = Field(0, description="subgraph, split and pair sampling seed")


@dataclass
class MemoryEvalResult:
    """Scores and tables of one experiment (also written to its output folder)."""

    scores: pd.DataFrame
    table: pd.DataFrame
    adapters: dict[str, AdapterInfo]
    ablations: pd.DataFrame | None = None
    switching: dict[str, Any] = field(default_factory=dict)


def split_pairs(pairs: list[dict[str, Any]], train_share: float, seed: int) -> list[dict[str, Any]]:
    """Copies of ``pairs`` with ``split`` = covered / held_out, stratified by family."""
    rng = np.random.default_rng(seed)
    out = [dict(p) for p in pairs]
    for family in sorted({p["family"] for p in out}):
        idx = [i for i, p in enumerate(out) if p["family"] == family]
        n_train = int(round(train_share * len(idx)))
        train = set(rng.permutation(idx)[:n_train].tolist())
        for i in idx:
            out[i]["split"] = "covered" if i in train else "held_out"
    return out


def _pairs(snapshot: GraphSnapshot, cfg: MemoryEvalConfig, instruct: InstructConfig) -> list[dict[str, Any]]:
    icfg = instruct.model_copy(update={"subgraph_nodes": cfg.subgraph_nodes, "seed": cfg.seed, "buffer_size": 0,
                                       "max_pairs_per_family": cfg.max_pairs_per_family})
    return split_pairs([asdict(p) for p in generate_pairs(snapshot, icfg)], cfg.train_share, cfg.seed)


def _score(adapters: dict[str, str], active: str, pairs: list[dict[str, Any]], inject: InjectConfig,
           cfg: MemoryEvalConfig, progress: bool) -> pd.DataFrame:
    from kgfin.llm.models import load_causal_lm

    base, tok = load_causal_lm(inject.model, seed=inject.seed)
    model = attach_adapters(base, adapters)
    model.set_adapter(active, inference_mode=True)
    return memory_accuracy(model, tok, pairs, batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens,
                           progress=progress)


def run_memory_eval(
    snapshot_of: Callable[[str], GraphSnapshot | None],
    month: str,
    out_dir: str | Path,
    cfg: MemoryEvalConfig | None = None,
    instruct: InstructConfig | None = None,
    inject: InjectConfig | None = None,
    progress: bool = True,
) -> MemoryEvalResult:
    """Run the experiment for ``month`` and write pairs, scores, tables and adapters to ``out_dir``."""
    cfg, instruct, inject = cfg or MemoryEvalConfig(), instruct or InstructConfig(), inject or InjectConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    snap = snapshot_of(month)
    if snap is None:
        raise ValueError(f"no graph snapshot for {month}")
    pairs = _pairs(snap, cfg, instruct)
    (out / f"pairs-{month}.jsonl").write_text("".join(json.dumps(p, sort_keys=True) + "\n" for p in pairs))
    covered = [p for p in pairs if p["split"] == "covered"]
    adapters: dict[str, AdapterInfo] = {}
    log.info("%s: %d pairs (%d covered); training the adapter", month, len(pairs), len(covered))
    adapters[month] = train_adapter(covered, adapter_dir(out / "adapters", month), inject, month=month, progress=progress)
    scores = _score({month: adapters[month].path}, month, pairs, inject, cfg, progress)
    table = accuracy_table(scores)
    result = MemoryEvalResult(scores, table, adapters)
    scores.to_csv(out / "scores.csv", index=False)  # written now: ablations and switching take as long again
    table.to_csv(out / "accuracy.csv", index=False)
    (out / "accuracy.md").write_text(table.to_markdown(index=False, floatfmt=".3f") + "\n")

    if cfg.ablations:
        rows = []
        for family in FAMILIES:
            kept = [p for p in covered if p["family"] != family]
            name = f"{month}-without-{family}"
            adapters[name] = train_adapter(kept, out / "adapters" / f"kg-{name}", inject, month=month, progress=progress)
            s = _score({name: adapters[name].path}, name, [p for p in pairs if p["split"] == "covered"], inject, cfg,
                       progress)
            acc = s.groupby("family")["exact"].mean()
            rows.append({"left_out": family, **{f: float(acc.get(f, np.nan)) for f in FAMILIES},
                         "all": float(s["exact"].mean())})
        full = scores[scores["split"] == "covered"].groupby("family")["exact"].mean()
        rows.insert(0, {"left_out": "none", **{f: float(full.get(f, np.nan)) for f in FAMILIES},
                        "all": float(scores[scores["split"] == "covered"]["exact"].mean())})
        result.ablations = pd.DataFrame(rows)

    if cfg.switch_month:
        other = snapshot_of(cfg.switch_month)
        if other is None:
            raise ValueError(f"no graph snapshot for {cfg.switch_month}")
        other_pairs = _pairs(other, cfg, instruct)
        b = cfg.switch_month
        adapters[b] = train_adapter([p for p in other_pairs if p["split"] == "covered"],
                                    adapter_dir(out / "adapters", b), inject, month=b, progress=progress)
        from kgfin.llm.models import load_causal_lm

        base, tok = load_causal_lm(inject.model, seed=inject.seed)
        model = attach_adapters(base, {month: adapters[month].path, b: adapters[b].path})
        facts = [p for p in pairs if p["split"] == "covered"]
        switching: dict[str, Any] = {}
        for name in (month, b):
            model.set_adapter(name, inference_mode=True)
            s = memory_accuracy(model, tok, facts, batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens)
            switching[f"{month}_facts_with_{name}_adapter"] = float(s["exact"].mean())
        t = time.perf_counter()
        for i in range(20):
            model.set_adapter((month, b)[i % 2], inference_mode=True)
        switching["switch_ms"] = 1000 * (time.perf_counter() - t) / 20
        result.switching = switching

    if result.ablations is not None:
        result.ablations.to_csv(out / "ablations.csv", index=False)
    write_manifest(out, "kgfin evaluate injection", cfg, extra={
        "month": month, "instruct": instruct.model_dump(mode="json"), "inject": inject.model_dump(mode="json"),
        "adapters": {k: asdict(v) for k, v in adapters.items()}, "switching": result.switching,
    })
    return result
