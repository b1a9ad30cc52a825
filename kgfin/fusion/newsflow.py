"""The newsflow representation study: which text representation predicts returns (docs/newsflow.md).

After Guo & Hauptmann (2024), one return head (``head``, by default the linear ``news_alone``)
is trained on one panel with the newsflow vector built in different ways, and every row is
scored on the same test months:

* **language-model rows**: each ``text_models`` spec (an encoder, e.g. MiniLM, or a decoder,
  e.g. SmolLM2) x ``layers`` (last, middle) x ``poolings`` (``mean``, ``last`` real token,
  ``cls`` = first token, encoders only, and ``attention`` learned with the head), frozen; the
  fixed poolings of one model come from one forward pass (:func:`kgfin.llm.embeddings.embed_together`);
* **LoRA rows**: each ``lora_models`` spec fine-tuned end to end with the head
  (:class:`kgfin.fusion.lora.LoraNewsEncoder`, pooling ``lora_pooling``, last layer);
* **sentiment rows**: the dictionary scorers (``vader``, ``loughran-mcdonald``) per headline,
  aggregated per stock-month like the embeddings, through the same head;
* **factor row**: ``factors_alone`` on the factors only (no news).

Each row is trained with every seed of ``seeds`` (the head's initialisation, mini-batch order,
LoRA and attention initialisation). Per seed: the monthly Pearson IC and Spearman rank IC of
the predictions with the next-month return (mean and ``t = mean / (sd / sqrt(months))``), and
the top-minus-bottom decile long-short portfolio. The summary gives the mean (and standard
deviation) over seeds, the long-short Sharpe of each seed (mean over seeds) and the 95 %
interval (Lo 2002 / Mertens 2002, :func:`kgfin.portfolio.metrics.sharpe_ci`) of the Sharpe of the
seed-averaged monthly long-short return. Under ``SharpeConfig.min_periods`` (60) test months no
Sharpe is reported (the project's rule), so the default market is long enough to test on 60
months. Wall time and peak resident memory are measured per row (the shared forward passes of
each language model separately): ``peak_mb`` is the process's peak resident set during the row
(Linux ``VmHWM``, reset before each row; it includes what the study holds: the panel, every
vector and the kept token states), ``peak_above_start_mb`` the part above the resident set at
the row's start.
"""

from __future__ import annotations

import gc
import logging
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from kgfin.config import KgfinConfig
from kgfin.data.loaders import MarketData
from kgfin.fusion.config import NEWS_MODELS, FusionConfig
from kgfin.fusion.features import Panel, build_panel
from kgfin.fusion.run import evaluate_predictions
from kgfin.fusion.train import fit_model, prepare_data
from kgfin.llm.embeddings import (
    FIXED_POOLINGS,
    EmbedConfig,
    NewsEmbedder,
    embed_together,
    is_decoder,
)
from kgfin.llm.sentiment import SENTIMENT_MODELS
from kgfin.portfolio.metrics import SharpeConfig, sharpe_ci
from kgfin.tables import markdown_table

__all__ = ["NewsflowStudyConfig", "StudyMarketConfig", "StudyResult", "StudyRow", "run_newsflow_study", "study_rows"]

log = logging.getLogger(__name__)


class StudyMarketConfig(KgfinConfig):
    """The synthetic market the study script generates (``eval/newsflow_study.py`` without ``--data``)."""

    companies: int = Field(120, ge=20, description="companies in the synthetic market")
    months: int = Field(120, ge=6, description="simulated months (60 test months need about 100)")
    start: str = Field("2007-01", pattern=r"^\d{4}-\d{2}$", description="first month (real factor history to 2017-03)")
    seed: int = Field(0, description="seed of the market")


class NewsflowStudyConfig(KgfinConfig):
    """The study grid; the return head's training settings are the fusion section's (``FusionConfig``)."""

    seeds: list[int] = Field([0, 1, 2], description="model seeds per row (head init, batch order, LoRA / attention init)")
    head: str = Field("news_alone", description="return model trained on every representation (a news model)")
    text_models: list[str] = Field(["all-minilm-l6-v2", "smollm2-135m-instruct"],
                                   description="language models (model specs): encoders and decoders")
    poolings: list[Literal["mean", "last", "cls", "attention"]] = Field(
        ["mean", "last", "cls", "attention"], description="token aggregations (cls: encoders only)")
    layers: list[Literal["last", "middle"]] = Field(["last", "middle"], description="layers whose token states are pooled")
    lora_models: list[str] = Field(["all-minilm-l6-v2"], description="language models also fine-tuned with LoRA "
                                                                     "end to end (decoders cost minutes per epoch)")
    lora_pooling: Literal["mean", "last", "cls", "attention"] = Field("mean", description="pooling of the LoRA rows")
    lora_epochs: int | None = Field(4, ge=1, description="epochs of the LoRA rows (None: fusion train.epochs)")
    sentiment: list[str] = Field(list(SENTIMENT_MODELS), description="dictionary sentiment baselines")
    factors_row: bool = Field(True, description="add the no-news factors_alone row")
    max_length: int = Field(48, ge=8, description="tokens per headline")
    test_months: int = Field(60, ge=1, description="last feature months tested (a Sharpe needs >= 60)")
    valid_months: int = Field(12, ge=1, description="feature months before the test months, for epoch selection")
    market: StudyMarketConfig = Field(default_factory=StudyMarketConfig)

    @field_validator("head")
    @classmethod
    def _news_head(cls, v: str) -> str:
        if v not in NEWS_MODELS:
            raise ValueError(f"head must be a news model, one of {list(NEWS_MODELS)}")
        return v

    @field_validator("sentiment")
    @classmethod
    def _known_sentiment(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if s not in SENTIMENT_MODELS]
        if bad:
            raise ValueError(f"unknown sentiment scorer(s) {bad}; choose from {list(SENTIMENT_MODELS)}")
        return v

    @model_validator(mode="after")
    def _check(self) -> NewsflowStudyConfig:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds must be a non-empty list of distinct integers")
        return self


@dataclass(frozen=True)
class StudyRow:
    """One row of the grid: how the newsflow input is made."""

    label: str
    family: str  # encoder | decoder | sentiment | none
    embed: EmbedConfig | None  # None: the factor row
    tuning: str = "frozen"  # frozen | lora | -


def _family(spec: str) -> str:
    from kgfin.llm.embeddings import load_text_model

    model, _ = load_text_model(spec)
    out = "decoder" if is_decoder(model) else "encoder"
    del model
    return out


def study_rows(cfg: NewsflowStudyConfig, families: dict[str, str] | None = None) -> list[StudyRow]:
    """The grid's rows in table order (``families``: spec -> encoder / decoder, found by loading when missing)."""
    families = dict(families or {})
    rows: list[StudyRow] = []
    for spec in dict.fromkeys([*cfg.text_models, *cfg.lora_models]):
        families.setdefault(spec, _family(spec))
    for spec in cfg.text_models:
        for layer in cfg.layers:
            for pooling in cfg.poolings:
                if pooling == "cls" and families[spec] == "decoder":
                    continue  # a causal model's first token has seen only itself
                e = EmbedConfig(model=spec, pooling=pooling, layer=layer, max_length=cfg.max_length)
                rows.append(StudyRow(f"{spec} {pooling}/{layer}", families[spec], e))
    for spec in cfg.lora_models:
        e = EmbedConfig(model=spec, pooling=cfg.lora_pooling, layer="last", max_length=cfg.max_length)
        rows.append(StudyRow(f"{spec} {cfg.lora_pooling}/last +LoRA", families[spec], e, "lora"))
    for spec in cfg.sentiment:
        rows.append(StudyRow(f"{spec} sentiment", "sentiment", EmbedConfig(model=spec), "-"))
    if cfg.factors_row:
        rows.append(StudyRow("factors only (no news)", "none", None, "-"))
    return rows


def _reset_peak() -> bool:
    """Reset the process's peak resident set (Linux ``clear_refs``); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _peak_mb() -> float:
    """Peak resident memory since the last reset (Linux VmHWM), else since the start (ru_maxrss)."""
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    """Resident memory now (Linux VmRSS; NaN where unknown)."""
    rss = _status_mb("VmRSS")
    return rss if rss is not None else float("nan")


@dataclass
class StudyResult:
    """Per-seed results, the summary table and the shared language-model passes."""

    per_seed: pd.DataFrame  # row, family, model, pooling, layer, tuning, seed, ic, ic_t, rank_ic, rank_ic_t, ...
    table: pd.DataFrame  # one row per grid row (see :func:`summarise`)
    passes: pd.DataFrame  # model, texts, seconds, peak_mb
    long_short: pd.DataFrame  # row, seed, month, long_short
    split_months: dict[str, list[str]] = field(default_factory=dict)
    sharpe_note: str = ""

    def to_markdown(self) -> str:
        """The summary table, the passes and the notes as Markdown."""
        test = self.split_months.get("test", [])
        head = (f"**{len(test)} test months {test[0]}..{test[-1]} (features; returns of the following months), "
                f"{self.per_seed['seed'].nunique()} seeds**\n\n") if test else ""
        shown = self.table.copy()
        parts = [head + markdown_table(shown, ".3f")]
        if len(self.passes):
            parts.append("**Shared forward passes (frozen token states, every fixed pooling and layer at once)**\n\n"
                         + markdown_table(self.passes, ".1f"))
        if self.sharpe_note:
            parts.append(self.sharpe_note)
        return "\n\n".join(parts) + "\n"


def _pearson_ic(test: pd.DataFrame) -> pd.Series:
    def one(g: pd.DataFrame) -> float:
        if len(g) < 3 or g["pred"].std() == 0 or g["ret"].std() == 0:
            return np.nan
        return float(np.corrcoef(g["pred"], g["ret"])[0, 1])

    return test.groupby("target_month").apply(one, include_groups=False).dropna()


def _t(x: pd.Series | np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2 or x.std(ddof=1) == 0:
        return np.nan
    return float(x.mean() / (x.std(ddof=1) / np.sqrt(len(x))))


def _score(preds: pd.DataFrame, panel: Panel) -> tuple[dict[str, float], pd.DataFrame]:
    metrics, res = evaluate_predictions(preds, panel)
    test = preds[preds["split"] == "test"]
    frame = test[["target_month", "pred"]].assign(ret=panel.ret[test.index.to_numpy()])
    ic = _pearson_ic(frame)
    rank = res.ic["ic"].dropna()
    out = {"ic": float(ic.mean()), "ic_t": _t(ic), "rank_ic": float(rank.mean()), "rank_ic_t": _t(rank),
           "ls_annual_return": metrics["ls_annual_return"], "ls_sharpe_seed": metrics["ls_sharpe"],
           "test_months": metrics["test_months"]}
    return out, res.returns[["month", "long_short"]]


def summarise(per_seed: pd.DataFrame, long_short: pd.DataFrame, rows: list[StudyRow],
              sharpe: SharpeConfig | None = None) -> pd.DataFrame:
    """One line per row: means (sd) over seeds, the long-short Sharpe and its CI (none under min_periods)."""
    sc = sharpe or SharpeConfig()
    out = []
    for r in rows:
        g = per_seed[per_seed["row"] == r.label]
        if g.empty:
            continue
        ls = long_short[long_short["row"] == r.label].groupby("month")["long_short"].mean()  # seed-averaged
        line: dict[str, Any] = {"row": r.label, "family": r.family, "tuning": r.tuning, "seeds": len(g),
                                "ic": g["ic"].mean(), "ic_sd": g["ic"].std(ddof=1) if len(g) > 1 else np.nan,
                                "ic_t": g["ic_t"].mean(), "rank_ic": g["rank_ic"].mean(),
                                "rank_ic_sd": g["rank_ic"].std(ddof=1) if len(g) > 1 else np.nan,
                                "rank_ic_t": g["rank_ic_t"].mean()}
        if len(ls) >= sc.min_periods:
            ci = sharpe_ci(ls.to_numpy(), periods_per_year=12, confidence=sc.confidence, method=sc.method,
                           n_resamples=sc.n_resamples, block_length=sc.block_length, seed=sc.seed)
            line |= {"ls_sharpe": g["ls_sharpe_seed"].mean(), "ls_sharpe_sd": g["ls_sharpe_seed"].std(ddof=1)
                     if len(g) > 1 else np.nan, "ls_sharpe_avg": ci.sharpe, "ci_low": ci.low, "ci_high": ci.high}
        else:
            line |= {"ls_sharpe": np.nan, "ls_sharpe_sd": np.nan, "ls_sharpe_avg": np.nan, "ci_low": np.nan,
                     "ci_high": np.nan}
        line |= {"fit_s_per_seed": g["fit_seconds"].mean(), "peak_mb": g["peak_mb"].max(),
                 "peak_above_start_mb": g["peak_above_start_mb"].max() if "peak_above_start_mb" in g else np.nan}
        out.append(line)
    return pd.DataFrame(out)


def _fusion_config(base: FusionConfig, cfg: NewsflowStudyConfig, panel: Panel) -> FusionConfig:
    months = panel.months
    need = cfg.test_months + cfg.valid_months + 2
    if len(months) < need:
        raise ValueError(f"the panel has {len(months)} feature months; test_months + valid_months + 2 training months "
                         f"= {need} are needed (generate a longer market or lower test_months)")
    split = base.split.model_copy(update={"test_start": months[-cfg.test_months],
                                          "valid_start": months[-cfg.test_months - cfg.valid_months]})
    return base.model_copy(update={"split": split, "models": [cfg.head]})


def run_newsflow_study(market: MarketData, config: NewsflowStudyConfig | None = None,
                       fusion: FusionConfig | None = None, cache_root: str | Path | None = None,
                       progress: bool = True) -> StudyResult:
    """Run every row of the grid with every seed on ``market`` (see the module doc).

    ``fusion`` holds the head's training settings and the panel's (``features``); its
    ``models``, ``embed``, ``lora.enabled`` and split are set by the study. ``cache_root``: the
    embedding cache (default ``kgfin.llm.cache_dir()/embeddings``).
    """
    from tqdm.auto import tqdm

    cfg = config or NewsflowStudyConfig()
    base = fusion or FusionConfig()
    panel = build_panel(market, config=base.features)
    base = _fusion_config(base, cfg, panel)
    rows = study_rows(cfg)

    # one forward pass per language model: every fixed pooling x layer cached, token states kept for attention
    vectors: dict[str, np.ndarray] = {}
    states: dict[str, Any] = {}
    passes = []
    for spec in dict.fromkeys(r.embed.model for r in rows if r.embed is not None and r.tuning != "lora"):
        frozen = [r for r in rows if r.embed is not None and r.embed.model == spec and r.tuning != "lora"]
        fixed = [r for r in frozen if r.embed.pooling in FIXED_POOLINGS or r.family == "sentiment"]
        learned = [r for r in frozen if r.embed.pooling == "attention"]
        embedders = [NewsEmbedder(r.embed, cache_root=cache_root) for r in fixed]
        stateful = [NewsEmbedder(r.embed, cache_root=cache_root) for r in learned]
        _reset_peak()
        start_mb = _rss_mb()
        t0 = time.perf_counter()
        vecs, sts = embed_together(embedders, panel.texts, progress=progress, states_of=stateful)
        passes.append({"model": spec, "texts": len(panel.texts), "distinct": len(set(panel.texts)),
                       "representations": len(embedders) + len(stateful),
                       "vectors_computed": sum(e.computed for e in embedders), "seconds": time.perf_counter() - t0,
                       "peak_mb": _peak_mb(), "peak_above_start_mb": _peak_mb() - start_mb})
        vectors |= {r.label: v for r, v in zip(fixed, vecs, strict=True)}
        states |= {r.label: s for r, s in zip(learned, sts, strict=True)}
        for e in [*embedders, *stateful]:
            e.release()
        gc.collect()

    records, ls_rows, split_months = [], [], {}
    for r in tqdm(rows, desc="newsflow study rows", unit="row", disable=not progress):
        for seed in cfg.seeds:
            _reset_peak()
            start_mb = _rss_mb()
            t0 = time.perf_counter()
            fc = base.model_copy(update={"seed": seed, **({"embed": r.embed} if r.embed is not None else {})})
            encoder = None
            name = cfg.head
            if r.embed is None:
                name = "factors_alone"
                fc = fc.model_copy(update={"models": [name]})
                data = prepare_data(panel, None, fc, d_n=1)
            elif r.tuning == "lora":
                from kgfin.fusion.lora import LoraNewsEncoder

                if cfg.lora_epochs is not None:
                    fc = fc.model_copy(update={"train": fc.train.model_copy(update={"epochs": cfg.lora_epochs})})
                encoder = LoraNewsEncoder(r.embed, fc.lora, seed=seed)
                data = prepare_data(panel, None, fc, d_n=encoder.dim)
            elif r.label in states:
                from kgfin.fusion.pooling import AttentionPoolEncoder

                encoder = AttentionPoolEncoder(states[r.label], hidden=fc.model.hidden, seed=seed,
                                               normalize=r.embed.normalize, lr=fc.model.pool_lr)
                data = prepare_data(panel, None, fc, d_n=encoder.dim)
            else:
                data = prepare_data(panel, vectors[r.label], fc)
            fit = fit_model(name, data, fc, encoder=encoder)
            metrics, ls = _score(fit.predictions, panel)
            seconds = time.perf_counter() - t0
            e = r.embed
            records.append({"row": r.label, "family": r.family, "model": e.model if e else "-",
                            "pooling": e.pooling if e and r.family != "sentiment" else "-",
                            "layer": e.layer if e and r.family != "sentiment" else "-", "tuning": r.tuning,
                            "seed": seed, **metrics, "best_epoch": fit.best_epoch, "fit_seconds": seconds,
                            "peak_mb": _peak_mb(), "peak_above_start_mb": _peak_mb() - start_mb})
            ls_rows.append(ls.assign(row=r.label, seed=seed))
            split_months = split_months or {s: sorted(panel.keys["month"][data.split == s].unique())
                                            for s in ("train", "valid", "test")}
            del encoder, fit
            gc.collect()
        log.info("study row %s done", r.label)

    per_seed = pd.DataFrame(records)
    long_short = pd.concat(ls_rows, ignore_index=True)
    sc = SharpeConfig()
    n_test = len(split_months.get("test", []))
    note = ("" if n_test >= sc.min_periods else
            f"No Sharpe ratio: {n_test} test months < {sc.min_periods} (SharpeConfig.min_periods); "
            "a Sharpe on so few months carries no information (docs/ripple-evaluation.md).")
    return StudyResult(per_seed=per_seed, table=summarise(per_seed, long_short, rows, sc),
                       passes=pd.DataFrame(passes), long_short=long_short, split_months=split_months,
                       sharpe_note=note)
