"""Ripple evaluation on held-out months: the v2 table (the yardstick) and the FinRipple tables for every method.

One loop over registered predictors (:mod:`kgfin.evaluate.predictors`), no per-method branches:
each method of ``RippleEvalConfig.methods`` is an :class:`~kgfin.evaluate.predictors.AnsweringPredictor`
that answers every event over the universe (the language models at every temperature of the
refusal table, generated once); its greedy answers are both the paper tables' predictions and its
v2 row (:class:`~kgfin.evaluate.predictors.PredictionsPredictor`), and the rows of
``v2.predictors`` that are not methods here (random, graph distance, ridge rule, rule oracle, the
negative controls) join the v2 table. Both score the same events: the news of the held-out
months, at most ``max_events_per_month`` a month, less those without a residual on their day or
a complete outcome window (counted). ``eval/ripple_v2.py`` scores every news item.

Methods (``RippleEvalConfig.methods``):

* LLM methods (:mod:`kgfin.align.predict`): ``zero_shot``, ``icl``, ``rag``, ``knowledge``
  (adapter, no alignment), ``aligned``;
* ``propagation_only``: no model knowledge of neighbours. The focal company's (first ticker's)
  impact comes from a ridge regression of its event-day CAPM residual on the MiniLM embedding
  of the headline, fitted on the events of the ``sentiment_months`` months before the first
  evaluated month (point in time), and is pushed through mu like every other method's answer;
* ``oracle`` (synthetic market only): the planted shocks themselves (the ceiling).

Every method's answer becomes ``Z`` over the companies of the graph month; the tables are:

* ``regression_<model>`` (Tables 1, 9, 10 analogues): OLS of the event-day residual (CAPM,
  FF3, FF5) on Z, one row per method (:func:`kgfin.evaluate.stats.impact_stats`);
* ``anova`` (Table 2): one-way ANOVA of CAPM residuals over Z's sign groups, F, p, eta^2;
* ``refusals`` (Table 4): refusal rate of the LLM methods at each temperature;
* ``drop_relation`` (Table 11): the best-placed LLM method's answers propagated with one
  relation type removed from mu;
* ``long_short`` (Table 3): daily top-minus-bottom portfolios on Z against equal weight,
  inverse volatility, Markowitz and minimum variance, every trading day of the evaluated months
  (flat days return 0), with the number of periods; a Sharpe ratio only with its CI and on at
  least ``sharpe.min_periods`` (60) periods;
* ``truth``: recall@k of the truly affected companies (top k by |Z|), the correlation of
  Z with the planted shocks and the share of events whose Z at the focal company has the
  planted focal shock's sign, per method (synthetic market only).

The v2 tables (:mod:`kgfin.evaluate.v2`, ``RippleEvaluation.v2``) lead ``tables.md``; the paper
tables follow under their own heading.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from kgfin.align.config import AlignConfig
from kgfin.align.events import AlignInputError, news_events
from kgfin.align.impact_reward import ImpactReward, build_impact_reward
from kgfin.align.predict import LLM_METHODS, Prediction, mu_without, prediction_frame
from kgfin.config import KgfinConfig
from kgfin.data.loaders import MarketData, find_table
from kgfin.data.tables import read_table
from kgfin.evaluate.long_short import evaluation_days
from kgfin.evaluate.predictors import (
    AnsweringPredictor,
    LanguageModelSetup,
    PredictionsPredictor,
)
from kgfin.evaluate.stats import StatsInputError, impact_stats
from kgfin.evaluate.v2 import (
    CONTROLS,
    ORACLES,
    RippleV2Config,
    RippleV2Result,
    prepare_v2,
    score_v2,
)
from kgfin.graph.builders import RELATIONS
from kgfin.graph.snapshot import GraphSnapshot
from kgfin.market.residuals import residuals
from kgfin.portfolio.allocators import ALLOCATORS
from kgfin.portfolio.backtest import LongShortConfig, allocator_backtest, long_short_backtest
from kgfin.portfolio.errors import PortfolioInputError
from kgfin.portfolio.metrics import SharpeConfig, performance_table
from kgfin.tables import markdown_table

__all__ = ["ALL_METHODS", "RippleEvalConfig", "RippleEvaluation", "daily_impacts", "run_ripple_eval", "truth_metrics",
           "write_ripple_outputs"]

ALL_METHODS = ("propagation_only", *LLM_METHODS, "oracle")
# warm_start needs an alignment run with align.warm_start.enabled (its OUT/warm_start folder): not a default row
DEFAULT_METHODS = tuple(m for m in ALL_METHODS if m != "warm_start")
MethodName = Literal["propagation_only", "zero_shot", "icl", "rag", "knowledge", "warm_start", "aligned", "oracle"]


class RippleEvalConfig(KgfinConfig):
    """Settings of ``kgfin evaluate ripple``."""

    methods: list[MethodName] = Field(default_factory=lambda: list(DEFAULT_METHODS),
                                      description="methods to compare (warm_start: the aligned run's supervised warm "
                                                  "start, when it had one)")
    max_events_per_month: int | None = Field(24, ge=1, description="held-out events per month (None: all)")
    temperatures: list[float] = Field(
        default_factory=lambda: [0.7], description="extra sampling temperatures for the refusal table (0 is always run)")
    max_new_tokens: int = Field(160, ge=8, description="answer length limit")
    batch_size: int = Field(8, ge=1, description="generation batch size")
    context_facts: int = Field(40, ge=1, description="graph facts in the zero-shot / ICL / RAG prompts")
    sentiment_months: int = Field(12, ge=1, description="months of earlier news the propagation-only sentiment model learns from")
    sentiment_ridge: float = Field(1.0, gt=0, description="ridge penalty of the sentiment model")
    recall_k: int = Field(10, ge=1, description="k of recall@k against the planted truth")
    residual_models: list[Literal["capm", "ff3", "ff5"]] = Field(default_factory=lambda: ["capm", "ff3", "ff5"])
    long_short: LongShortConfig = Field(default_factory=LongShortConfig)
    sharpe: SharpeConfig = Field(default_factory=SharpeConfig,
                                 description="Table 3's Sharpe ratios: CI, fewest periods shown")
    v2: RippleV2Config = Field(default_factory=RippleV2Config,
                               description="ripple evaluation v2 (kgfin.evaluate.v2): same candidates for every method, "
                                           "rank IC with CIs and paired tests; here on the paper tables' events "
                                           "(max_events_per_month above)")
    seed: int = Field(0, description="sampling seed")


PAPER_TITLES = {
    "regression_capm": "Table 1 analogue: CAPM residuals on predicted ripple Z",
    "anova": "Table 2 analogue: ANOVA of CAPM residuals over the sign of Z",
    "regression_ff3": "Table 9 analogue: FF3 residuals", "regression_ff5": "Table 10 analogue: FF5 residuals",
    "refusals": "Table 4 analogue: refusal rate by temperature",
    "drop_relation": "Table 11 analogue: one relation type removed from mu",
    "long_short": "Table 3 analogue: daily long-short on Z vs benchmark allocators (Sharpe with its CI, none under "
                  "60 periods)",
    "truth": "Against the planted truth (synthetic market)",
}


@dataclass
class RippleEvaluation:
    """Every table of a ripple evaluation: ``v2`` (the yardstick), the paper-analogue ``tables``, the per-method
    predictions (Z over the universe) and the language models' raw replies."""

    tables: dict[str, pd.DataFrame]
    predictions: dict[str, pd.DataFrame]
    events: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    answers: dict[str, pd.DataFrame] = field(default_factory=dict)  # language-model methods: raw greedy replies
    v2: RippleV2Result | None = None

    def paper_markdown(self) -> str:
        """The paper-analogue tables and the notes, as Markdown."""
        parts = [f"## {PAPER_TITLES.get(k, k)}\n\n{markdown_table(t, '.4g')}" for k, t in self.tables.items()]
        if self.notes:
            parts.append("## Notes\n\n" + "\n".join(f"* {n}" for n in self.notes))
        return "\n\n".join(parts) + "\n"

    def to_markdown(self) -> str:
        """``tables.md``: the v2 tables first, then the paper-analogue tables under their own heading."""
        parts = []
        if self.v2 is not None:
            parts.append("# Ripple evaluation v2: every method on the same candidates, rank IC with CIs\n\n"
                         + self.v2.to_markdown())
        parts.append("# Paper-analogue tables (FinRipple): each method on its own rows, not comparable across "
                     "methods\n\n" + self.paper_markdown())
        return "\n".join(parts)


def write_ripple_outputs(result: RippleEvaluation, out_dir: str | Path, cfg: RippleEvalConfig, align_cfg: AlignConfig,
                         months: Sequence[str], command: str = "kgfin evaluate ripple") -> Path:
    """Write ``tables.md`` (v2 first), one CSV per paper table, the v2 files (``v2.md``, ``v2_*.csv``:
    :meth:`RippleV2Result.write`), ``predictions-METHOD.csv``, ``answers-METHOD.csv`` (the models' raw replies),
    ``events.csv`` and the manifest."""
    from kgfin.runinfo import write_manifest

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, table in result.tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    for method, frame in result.predictions.items():
        frame.to_csv(out / f"predictions-{method}.csv", index=False)
    for method, frame in result.answers.items():
        frame.to_csv(out / f"answers-{method}.csv", index=False)
    events = result.events.assign(tickers=result.events["tickers"].map(";".join))
    events.to_csv(out / "events.csv", index=False)
    if result.v2 is not None:
        result.v2.write(out)
    (out / "tables.md").write_text(result.to_markdown())
    write_manifest(out, command, cfg, extra={"months": list(months), "events": len(result.events),
                                             "align_config": align_cfg.model_dump(mode="json"), "notes": result.notes})
    return out


def _truth(data_dir: Path | None, events: pd.DataFrame) -> pd.DataFrame | None:
    if data_dir is None:
        return None
    path = find_table(data_dir / "truth", "impacts")
    if path is None:
        return None
    impacts = read_table(path)
    return impacts[impacts["event_id"].isin(set(events["event_id"]))]


def daily_impacts(frame: pd.DataFrame) -> pd.DataFrame:
    """A :func:`~kgfin.align.predict.prediction_frame` summed per (date, ticker), refused events kept as
    refusal rows: the input of :func:`~kgfin.evaluate.stats.impact_stats`."""
    answered = frame[~frame["refused"]]
    daily = answered.groupby(["date", "ticker"], as_index=False)["impact"].sum()
    refused = frame[frame["refused"]].assign(ticker="-", impact=np.nan)[["date", "ticker", "impact"]]
    return pd.concat([daily.assign(refused=False), refused.assign(refused=True)], ignore_index=True)


def run_ripple_eval(
    market: MarketData,
    read_snapshot: Callable[[str], GraphSnapshot],
    months: Sequence[str],
    cfg: RippleEvalConfig,
    align_cfg: AlignConfig,
    *,
    adapters_root: str | Path = "adapters",
    aligned_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    progress: bool = True,
) -> RippleEvaluation:
    """Answer the held-out ``months``' events with every method once, then build the v2 tables and the paper
    tables from the same answers on the same events (module docstring)."""
    from tqdm.auto import tqdm

    if embed is None:
        from kgfin.llm.embeddings import NewsEmbedder

        embedder = NewsEmbedder()
        embed = lambda texts: embedder.embed(texts, progress=False)  # noqa: E731
    notes: list[str] = []
    events = news_events(market, sorted(months), align_cfg.events.model_copy(
        update={"max_events_per_month": cfg.max_events_per_month}))
    news = len(events)
    # Residuals of every model, fitted once: the reward's model (for eps), CAPM / FF3 / FF5 for the tables.
    models = dict.fromkeys([align_cfg.impact.residuals.model, *cfg.residual_models])
    realised = {m: residuals(market.returns, market.factors_daily,
                             align_cfg.impact.residuals.model_copy(update={"model": m})) for m in models}
    resid = realised[align_cfg.impact.residuals.model]
    reward, events = build_impact_reward(events, market, read_snapshot, align_cfg.impact,
                                         prefix=align_cfg.decoding.answer_prefix, resid=resid)
    if len(events) < news:
        notes.append(f"{news - len(events)} of {news} news items dropped: no residual on their day for a firm they "
                     "name")
    lm = LanguageModelSetup(Path(adapters_root), Path(aligned_dir) if aligned_dir else None, cfg.max_new_tokens,
                            cfg.batch_size, cfg.context_facts, cfg.seed)
    setup = prepare_v2(market, read_snapshot, months, cfg.v2, align_cfg, events=events, data_dir=data_dir,
                       embed=embed, sentiment_months=cfg.sentiment_months, sentiment_ridge=cfg.sentiment_ridge, lm=lm,
                       resid=resid, impact_reward=reward)
    events = setup.events  # both the v2 rows and the paper tables score these
    dropped = setup.counts["dropped: outcome window past the data"]
    if dropped:
        notes.append(f"{dropped} event(s) dropped from every table: the v2 outcome window runs past the data")
    setup.counts = {"news items": news, "dropped: no residual on the event day": news - setup.counts["news items"],
                    **{k: v for k, v in setup.counts.items() if k != "news items"}}
    setup.notes.append(f"v2 scores the {len(events)} events of the paper tables (at most {cfg.max_events_per_month} "
                       "a month); eval/ripple_v2.py scores every news item")
    tickers = list(reward.tickers)
    temperatures = list(dict.fromkeys([0.0, *cfg.temperatures]))
    preds: dict[str, list[Prediction]] = {}
    generated: list[str] = []  # methods whose answers are generated text (raw replies and refusals reported)
    refusal_rows = []
    for predictor in tqdm(setup.predictors(cfg.methods), desc="methods", disable=not progress):
        if not isinstance(predictor, AnsweringPredictor):
            raise AlignInputError(f"method {predictor.name!r} gives no answers over the universe for the paper tables")
        by_temp = predictor.answers(events, setup.ctx, temperatures if predictor.generates else [0.0])
        if predictor.generates:
            generated.append(predictor.name)
            refusal_rows += [{"method": predictor.name, "temperature": temp,
                              "refusal_rate": float(np.mean([p.scored.refused for p in got])), "events": len(got)}
                             for temp, got in by_temp.items()]
        preds[predictor.name] = by_temp[0.0]
    skipped = [m for m in cfg.methods if m not in preds]
    if skipped:
        notes.append(f"{', '.join(skipped)} skipped: the data folder has no truth/ tables (not a synthetic market)")
    rows = [PredictionsPredictor(m, p, tickers) for m, p in preds.items()]
    rows += setup.predictors([n for n in cfg.v2.predictors if n not in preds])
    # table order: baselines, language models, oracles, negative controls
    rows.sort(key=lambda r: 3 if r.name in CONTROLS else 2 if r.name in ORACLES else 1 if r.name in generated else 0)
    v2 = score_v2(setup, rows, progress=progress)

    frames = {m: prediction_frame(p, tickers) for m, p in preds.items()}
    focal = {str(e): t[0] for e, t in zip(events["event_id"], events["tickers"], strict=True)}
    truth = _truth(Path(data_dir) if data_dir else None, events)
    tables = _tables(frames, preds, reward, read_snapshot, market, truth, cfg, realised, notes, focal, months)
    if refusal_rows:
        tables["refusals"] = pd.DataFrame(refusal_rows).pivot(index="method", columns="temperature",
                                                             values="refusal_rate").reset_index()
        tables["refusals"].columns = ["method", *[f"T={t:g}" for t in tables["refusals"].columns[1:]]]
    order = ["regression_capm", "anova", "regression_ff3", "regression_ff5", "refusals", "drop_relation",
             "long_short", "truth"]
    answers = {m: pd.DataFrame([{"event_id": p.event_id, "refused": p.scored.refused, "reward": p.scored.reward,
                                 "reply": p.completion} for p in preds[m]])
               for m in generated}
    return RippleEvaluation({k: tables[k] for k in order if k in tables}, frames, events, notes, answers, v2)


def _safe(fn: Callable[[], pd.DataFrame], what: str, notes: list[str]) -> pd.DataFrame | None:
    try:
        return fn()
    except StatsInputError as exc:
        notes.append(f"{what}: {exc}")
        return None


def truth_metrics(preds: Sequence[Prediction], truth: pd.DataFrame, tickers: Sequence[str], focal: dict[str, str],
                  recall_k: int = 10) -> dict[str, float]:
    """How one method's answers match the planted truth (a synthetic market's ``truth/impacts`` rows).

    ``recall@k``: share of the truly affected companies among the top ``recall_k`` by |Z|;
    ``corr_with_planted``: correlation of Z with the planted shocks; ``focal_sign_right``: share
    of events whose Z at the news' company (``focal``: event id -> ticker) has the planted sign
    (0 in Z counts as wrong); plus the mean reward and the refusal rate. Averages over the
    events that have truth rows.
    """
    tickers = list(tickers)
    by_event = {e: g for e, g in truth.groupby("event_id")}
    recalls, corrs, mean_reward, focal_right = [], [], [], []
    for p in preds:
        part = by_event.get(p.event_id)
        if part is None or part.empty:
            continue
        shock = np.zeros(len(tickers))
        shock[[tickers.index(t) for t in part["ticker"]]] = part["shock"].to_numpy(dtype=float)
        true = set(part.loc[part["shock"] != 0, "ticker"])
        z = p.scored.z
        top = [tickers[j] for j in np.argsort(-np.abs(z), kind="stable")[:recall_k] if z[j] != 0]
        recalls.append(len(true & set(top)) / len(true) if true else np.nan)
        corrs.append(float(np.corrcoef(z, shock)[0, 1]) if z.std() > 0 and shock.std() > 0 else 0.0)
        mean_reward.append(p.scored.reward)
        j = tickers.index(focal[p.event_id]) if focal.get(p.event_id) in tickers else None
        if j is not None and shock[j] != 0:  # 0 in Z (not named, not reached) counts as wrong
            focal_right.append(float(np.sign(z[j]) == np.sign(shock[j])))
    return {"events": len(recalls), f"recall@{recall_k}": float(np.nanmean(recalls)) if recalls else np.nan,
            "corr_with_planted": float(np.mean(corrs)) if corrs else np.nan,
            "focal_sign_right": float(np.mean(focal_right)) if focal_right else np.nan,
            "mean_reward": float(np.mean(mean_reward)) if mean_reward else np.nan,
            "refusal_rate": float(np.mean([p.scored.refused for p in preds])) if preds else np.nan}


def _tables(frames: dict[str, pd.DataFrame], preds: dict[str, list[Prediction]], reward: ImpactReward,
            read_snapshot: Callable[[str], GraphSnapshot], market: MarketData, truth: pd.DataFrame | None,
            cfg: RippleEvalConfig, realised: dict[str, pd.DataFrame], notes: list[str],
            focal: dict[str, str], months: Sequence[str]) -> dict[str, pd.DataFrame]:
    tables: dict[str, pd.DataFrame] = {}
    anova_rows = []
    for model in cfg.residual_models:
        resid = realised[model]
        rows = []
        for method, frame in frames.items():
            stats = _safe(lambda f=frame, r=resid: impact_stats(daily_impacts(f), r), f"{method} vs {model}", notes)
            if stats is None:
                continue
            reg = stats.regression.iloc[0]
            rows.append({"method": method, "nobs": int(reg["nobs"]), "coef": reg["coef"], "robust_t": reg["robust_t"],
                         "p": reg["robust_p"], "r2": reg["r2"],
                         # share of events refused (the prediction table has one row per refused event but
                         # one per affected company of an answered event, so its row share would understate it)
                         "refusal_rate": float(np.mean([p.scored.refused for p in preds[method]]))})
            if model == "capm":
                t = stats.tests.iloc[0]
                anova_rows.append({"method": method, "F": t["anova_f"], "p": t["anova_p"], "eta2": t["eta2"],
                                   "groups": int(t["n_groups"])})
        tables[f"regression_{model}"] = pd.DataFrame(rows)
    tables["anova"] = pd.DataFrame(anova_rows)

    llm = [m for m in ("aligned", "warm_start", "knowledge", "rag", "icl", "zero_shot") if m in preds]
    if llm and "capm" in realised:
        method = llm[0]
        rows = []
        snaps = {g: read_snapshot(g) for g in reward.mu}  # one read per graph month, not per event
        dropped_mu = {(g, rel): mu_without(s, rel) for g, s in snaps.items() for rel in RELATIONS}
        for dropped in ("none", *RELATIONS):
            out = []
            for p in preds[method]:
                if p.scored.refused:
                    out.append(p)
                    continue
                mu = reward.mu[p.graph_month] if dropped == "none" else dropped_mu[(p.graph_month, dropped)]
                out.append(Prediction(p.event_id, p.day, p.graph_month, p.completion,
                                      reward.score_vectors(p.event_id, p.scored.impacts, p.scored.y, mu=mu)))
            # regression only: without one relation every Z may have one sign, which the group tests reject
            stats = _safe(lambda o=out: impact_stats(daily_impacts(prediction_frame(o, list(reward.tickers))),
                                                     realised["capm"], with_group_tests=False),
                          f"drop {dropped}", notes)
            if stats is not None:
                reg = stats.regression.iloc[0]
                rows.append({"method": method, "dropped": dropped, "nobs": int(reg["nobs"]), "coef": reg["coef"],
                             "p": reg["robust_p"], "r2": reg["r2"],
                             "mean_reward": float(np.mean([q.scored.reward for q in out]))})
        if rows:
            tables["drop_relation"] = pd.DataFrame(rows)
        else:
            notes.append(f"drop-one-relation table skipped: no regression for {method} (notes above)")

    # Table 3: every trading day of the evaluated months (and any later held day), flat days at 0, so a method that
    # trades on a few days is not scored on those days alone; Sharpe only with its CI and periods (performance_table)
    window = evaluation_days(market.returns, months)
    series = {}
    for method, frame in frames.items():
        signals = frame[~frame["refused"]].groupby(["date", "ticker"], as_index=False)["impact"].sum()
        try:
            daily = long_short_backtest(signals, market.returns, score="impact", config=cfg.long_short)
            series[f"long_short:{method}"] = daily.set_index("date")["ret"]
        except PortfolioInputError as exc:  # a method with too few signals holds nothing
            notes.append(f"long-short {method}: {exc}")
    if series and len(window):
        days = window.union(pd.DatetimeIndex(sorted(set().union(*[s.index for s in series.values()]))))
        days = days[days >= window[0]]
        for name in ALLOCATORS:
            try:
                bench = allocator_backtest(market.returns, name, start=days[0], end=days[-1])
                series[f"benchmark:{name}"] = bench.set_index("date")["ret"]
            except PortfolioInputError as exc:
                notes.append(f"benchmark {name}: {exc}")
        daily = pd.DataFrame({k: v.reindex(days).fillna(0.0) if k.startswith("long_short:") else v.reindex(days)
                              for k, v in series.items()}, index=days)
        tables["long_short"] = performance_table(daily, config=cfg.sharpe)

    if truth is not None:
        tables["truth"] = pd.DataFrame([{"method": method, **truth_metrics(plist, truth, list(reward.tickers), focal,
                                                                            cfg.recall_k)}
                                        for method, plist in preds.items()])
    return tables
