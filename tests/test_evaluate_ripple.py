"""Ripple prediction and the evaluation tables, on the small synthetic market with a tiny model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from text_stub import hashed_embed

from kgfin.align.config import AlignConfig, EventConfig
from kgfin.align.events import news_events
from kgfin.align.impact_reward import build_impact_reward
from kgfin.align.predict import ModelVariant, graph_facts, mu_without, predict_events
from kgfin.align.trainer import align
from kgfin.data import load_market
from kgfin.evaluate.ripple import RippleEvalConfig, run_ripple_eval
from kgfin.graph.snapshot import build_snapshot
from kgfin.llm import TINY_MODEL

pytestmark = pytest.mark.integration


def _align_cfg(**kw: object) -> AlignConfig:
    base = {"model": TINY_MODEL, "knowledge": False, "save_steps": 0, "events": {"max_events_per_month": 2},
            "impact": {"residuals": {"window": 60, "min_obs": 40}},
            "ppo": {"batch_size": 2, "mini_batch_size": 2, "ppo_epochs": 1, "max_new_tokens": 6, "learning_rate": 1e-4,
                    "temperature": 1.0},
            "decoding": {"stop_at_json_end": False, "constrained": False}, "lora": {"r": 2, "alpha": 4}}
    return AlignConfig.model_validate({**base, **kw})


@pytest.fixture(scope="module")
def market(synth_dir: Path):
    return load_market(synth_dir)


def test_graph_facts_paths_and_dropped_relations(market) -> None:
    snap = build_snapshot(market, "2014-07")
    edges = snap.edge_table()
    focal = edges["source"].iloc[0]
    facts = graph_facts(snap, [focal], limit=12)
    assert len(facts) == 12 and focal in facts[0]
    assert graph_facts(snap, [focal], limit=12, seed=1)[:3] == facts[:3]
    assert len(graph_facts(snap)) == len(edges)
    for rel in edges["relation"].unique():
        dropped = mu_without(snap, rel)
        assert dropped.nnz < snap.mu().nnz


def test_predictions_carry_paths_and_evaluation_builds_every_table(market, synth_dir: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    read = lambda m: build_snapshot(market, m)  # noqa: E731
    acfg = _align_cfg()
    run = align(acfg, market, read, ["2014-07"], tmp_path / "align", progress=False)
    assert run.final.exists()

    events = news_events(market, ["2014-08"], EventConfig(max_events_per_month=4))
    reward, events = build_impact_reward(events, market, read, acfg.impact)
    import kgfin.llm.generate as gen

    def answer_focal(model, tok, messages, **kw):
        out = []
        for m in messages:
            ticker = re.search(r"\(([A-Z]{2,5})\)", m).group(1)  # the first "(TICKER)" of the news body
            out.append(json.dumps({"impact_analysis": {"affected_companies": [
                {"name": ticker, "impact_type": "direct", "impact_score": -5}], "analysis": "x"}}))
        return out

    monkeypatch.setattr(gen, "generate_replies", answer_focal)
    preds = predict_events(ModelVariant("knowledge"), events, reward, read, acfg, with_paths=True)[0.0]
    answered = [p for p in preds if not p.scored.refused]
    assert answered, [p.completion for p in preds]
    p = answered[0]
    named = next(iter(p.scored.impacts.scores))
    assert p.paths[named][0] == f"{named} (named)"
    assert all(" -[" in x for t, paths in p.paths.items() if t != named for x in paths)

    greedy_messages: list[int] = []

    def counted(model, tok, messages, temperature=0.0, **kw):
        if temperature == 0:
            greedy_messages.append(len(messages))
        return answer_focal(model, tok, messages, **kw)

    monkeypatch.setattr(gen, "generate_replies", counted)
    cfg = RippleEvalConfig(max_events_per_month=6, temperatures=[0.7], batch_size=4, max_new_tokens=8,
                           residual_models=["capm", "ff3", "ff5"],
                           v2={"n_resamples": 200, "predictor": {"ridge_months": 3, "random_draws": 5}})
    result = run_ripple_eval(market, read, ["2014-08"], cfg, acfg, aligned_dir=run.final, data_dir=synth_dir,
                             embed=hashed_embed, progress=False)
    n = len(result.events)
    # the language models answer each event once (greedy): the paper tables and the v2 rows share the answers
    assert sum(greedy_messages) == 5 * n
    v2 = result.v2
    assert v2 is not None and v2.counts["events scored"] == n
    assert set(v2.summary["method"]) == set(cfg.methods) | set(cfg.v2.predictors)
    focal_rows = v2.per_event[v2.per_event["variant"] == "focal"]
    for method, part in focal_rows.groupby("method"):  # every row scores the paper tables' events
        assert sorted(part["event_id"]) == sorted(result.events["event_id"].astype(str)), method
    assert (v2.summary["events"] + v2.summary["IC undefined"] == n).all()
    assert {"p vs propagation_only", "p vs knowledge"} <= set(v2.summary.columns)
    assert set(v2.long_short["strategy"]) == set(v2.summary["method"])
    md = result.to_markdown()
    assert md.index("Ripple evaluation v2") < md.index("Paper-analogue tables") < md.index("Table 1 analogue")
    # Table 3 spans every trading day of August, and 21-odd days show no Sharpe ratio
    august = market.returns["date"][market.returns["date"].dt.strftime("%Y-%m") == "2014-08"].nunique()
    ls = result.tables["long_short"].set_index("strategy")
    assert (ls["periods"] == august).all() and august < 60
    assert ls["sharpe"].isna().all() and ls["max_drawdown"].isna().all()
    assert ls["shown"].str.startswith(f"{august} < 60 periods").all()
    assert list(result.tables) == ["regression_capm", "anova", "regression_ff3", "regression_ff5", "refusals",
                                   "drop_relation", "long_short", "truth"]
    methods = set(result.tables["regression_capm"]["method"])
    assert {"propagation_only", "oracle", "knowledge", "aligned", "zero_shot", "icl", "rag"} <= methods
    truth = result.tables["truth"].set_index("method")
    assert truth.loc["oracle", "corr_with_planted"] == pytest.approx(1.0)
    assert truth.loc["oracle", "focal_sign_right"] == 1.0
    assert truth.loc["oracle", "recall@10"] > 0.9
    assert set(result.tables["refusals"].columns) == {"method", "T=0", "T=0.7"}
    # Table 1's refusal rate is the share of events refused, as Table 4's greedy column
    greedy = result.tables["refusals"].set_index("method")["T=0"]
    reg = result.tables["regression_capm"].set_index("method")
    for method in greedy.index.intersection(reg.index):
        assert reg.loc[method, "refusal_rate"] == pytest.approx(greedy[method])
    assert set(result.tables["drop_relation"]["dropped"]) >= {"none", "SUPPLIES"}
    strategies = set(result.tables["long_short"]["strategy"])
    assert {"long_short:oracle", "benchmark:equal", "benchmark:min_variance"} <= strategies
    assert "Table 1 analogue" in result.to_markdown()
    assert set(result.answers) == {"knowledge", "aligned", "zero_shot", "icl", "rag"}
    knowledge = result.answers["knowledge"]
    assert list(knowledge.columns) == ["event_id", "refused", "reward", "reply"] and len(knowledge) == len(result.events)
    assert (knowledge["reply"].str.len() > 0).all()


def test_predictions_at_several_temperatures_load_each_model_once(market, monkeypatch: pytest.MonkeyPatch) -> None:
    import kgfin.align.predict as pred
    import kgfin.llm.generate as gen

    read = lambda m: build_snapshot(market, m)  # noqa: E731
    acfg = _align_cfg()
    events = news_events(market, ["2014-08", "2014-09"], EventConfig(max_events_per_month=2))
    reward, events = build_impact_reward(events, market, read, acfg.impact)
    loads, temps = [], []
    real_load = pred.load_variant_model

    def counting_load(variant, cfg, root, graph_month):
        loads.append(graph_month)
        return real_load(variant, cfg, root, graph_month)

    def answer(model, tok, messages, temperature, **kw):
        temps.append(temperature)
        score = -5 if temperature == 0 else 5
        return [json.dumps({"impact_analysis": {"affected_companies": [
            {"name": re.search(r"\(([A-Z]{2,5})\)", m).group(1), "impact_score": score}]}}) for m in messages]

    monkeypatch.setattr(pred, "load_variant_model", counting_load)
    monkeypatch.setattr(gen, "generate_replies", answer)
    got = predict_events(ModelVariant("zero_shot"), events, reward, read, acfg, temperatures=[0.0, 0.7])
    months = sorted(set(events["graph_month"]))
    assert loads == months and temps == [0.0, 0.7] * len(months)
    assert [p.event_id for p in got[0.7]] == list(events["event_id"])
    assert all(next(iter(p.scored.impacts.scores.values())) == -5 for p in got[0.0])
    assert all(next(iter(p.scored.impacts.scores.values())) == 5 for p in got[0.7])
    single = predict_events(ModelVariant("zero_shot"), events, reward, read, acfg, temperatures=[0.7])[0.7]
    assert [p.completion for p in single] == [p.completion for p in got[0.7]]
