"""The alignment loop on a tiny random model: months, frozen knowledge adapters, log, checkpoints, resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from kgfin.align.config import AlignConfig
from kgfin.align.events import AlignInputError
from kgfin.align.models import knowledge_model
from kgfin.align.trainer import LOG_COLUMNS, align
from kgfin.data import load_market
from kgfin.graph.snapshot import build_snapshot
from kgfin.inject import adapter_dir
from kgfin.llm import TINY_MODEL, load_causal_lm

pytestmark = pytest.mark.integration

MONTHS = ["2014-07", "2014-08"]


def _cfg(decoding: dict[str, object] | None = None, **kw: object) -> AlignConfig:
    base = {"model": TINY_MODEL, "knowledge": False, "save_steps": 1,
            "events": {"max_events_per_month": 4},
            "impact": {"residuals": {"window": 60, "min_obs": 40}},
            "ppo": {"batch_size": 2, "mini_batch_size": 2, "ppo_epochs": 1, "max_new_tokens": 6, "learning_rate": 1e-3,
                    "temperature": 1.0},
            "decoding": {"stop_at_json_end": False, "constrained": False, **(decoding or {})},  # free-form: fast, refusable
            "lora": {"r": 2, "alpha": 4}}
    return AlignConfig.model_validate({**base, **kw})


@pytest.fixture(scope="module")
def market(synth_dir: Path):
    return load_market(synth_dir)


def _read(market):
    return lambda m: build_snapshot(market, m)


def test_runs_over_months_and_resumes_to_the_same_log(market, tmp_path: Path) -> None:
    full = align(_cfg(), market, _read(market), MONTHS, tmp_path / "full", progress=False)
    assert list(full.log.columns) == LOG_COLUMNS
    assert len(full.log) == 4 and full.log["month"].tolist() == ["2014-07", "2014-07", "2014-08", "2014-08"]
    assert (full.log["graph_month"] == ["2014-06", "2014-06", "2014-07", "2014-07"]).all()
    assert full.log["refusal_rate"].between(0, 1).all() and full.log["kl"].notna().all()
    assert (full.final / "align-adapter" / "adapter_config.json").exists()
    assert (full.final / "kgfin-run.json").exists()

    part = align(_cfg(), market, _read(market), MONTHS, tmp_path / "part", max_steps=3, progress=False)
    assert len(part.log) == 3 and not part.final.exists()
    latest = json.loads((tmp_path / "part" / "latest" / "kgfin-run.json").read_text())  # a partial run's alignment
    assert (latest["steps"], latest["planned_steps"]) == (3, 4)
    assert (tmp_path / "part" / "latest" / "align-adapter" / "adapter_config.json").exists()
    rest = align(_cfg(), market, _read(market), MONTHS, tmp_path / "part", progress=False)
    cols = ["step", "month", "reward", "kl", "response_length", "pg_loss", "vf_loss"]
    pd.testing.assert_frame_equal(rest.log[cols], full.log[cols])
    a = torch.load(tmp_path / "full" / "checkpoint" / "state.pt", weights_only=False)["learned"]
    b = torch.load(tmp_path / "part" / "checkpoint" / "state.pt", weights_only=False)["learned"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_knowledge_adapters_are_merged_frozen_and_required(market, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    adapters = tmp_path / "adapters"
    for month in ("2014-06", "2014-07"):
        base, _ = load_causal_lm(TINY_MODEL)
        torch.manual_seed(int(month[-2:]))
        peft = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules="all-linear", init_lora_weights=False))
        peft.save_pretrained(adapter_dir(adapters, month))
    cfg = _cfg(knowledge=True)
    june, _ = knowledge_model(cfg, adapters, "2014-06")
    plain, _ = load_causal_lm(TINY_MODEL)
    assert not any(p.requires_grad for p in june.parameters())
    assert any(not torch.equal(p, q) for p, q in zip(june.parameters(), plain.parameters(), strict=True))
    result = align(cfg, market, _read(market), MONTHS, tmp_path / "run", adapters, progress=False)
    assert len(result.log) == 4
    with pytest.raises(AlignInputError, match=r"kgfin inject --month 2014-07"):
        align(cfg, market, _read(market), ["2014-08"], tmp_path / "run2", tmp_path / "empty", progress=False)


def test_backbone_training_saves_a_weight_delta(market, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    result = align(_cfg(train="backbone"), market, _read(market), ["2014-08"], tmp_path / "bb", progress=False)
    delta = load_file(str(result.final / "backbone-delta.safetensors"))
    assert len(delta) == len(list(load_causal_lm(TINY_MODEL)[0].parameters()))
    assert any(float(v.abs().max()) > 0 for v in delta.values())


@pytest.mark.parametrize("algo", ["grpo", "rloo"])
def test_trl_algorithms_take_the_same_reward(market, tmp_path: Path, algo: str, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    import kgfin.align.trl_algos as trl_algos

    adapters_seen: list[list[str]] = []
    original = trl_algos._keep_knowledge_reference

    def spy(model):
        original(model)
        adapters_seen.append(sorted(model.peft_config))

    monkeypatch.setattr(trl_algos, "_keep_knowledge_reference", spy)
    cfg = _cfg(algo=algo, num_generations=2, ppo={"batch_size": 4, "max_new_tokens": 6, "learning_rate": 1e-3,
                                                  "temperature": 1.0})
    result = align(cfg, market, _read(market), ["2014-08"], tmp_path / algo, progress=False)
    assert len(result.log) == 2  # 4 news, 2 per step (each answered twice)
    assert result.log["refusal_rate"].between(0, 1).all() and result.log["response_length"].notna().all()
    assert (result.final / "align-adapter" / "adapter_config.json").exists()
    state = torch.load(tmp_path / algo / "checkpoint" / "state.pt", weights_only=False)
    assert state["trainer"]["optimizer"]["state"]  # AdamW moments carried, not reset every step
    assert adapters_seen == [["default"]] * 2  # the KL reference is the knowledge model, not a copy of the LoRA
    with pytest.raises(ValueError, match="needs train=lora"):
        _cfg(algo=algo, train="backbone")


def test_a_run_can_start_from_an_earlier_alignment(market, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    first = align(_cfg(), market, _read(market), ["2014-07"], tmp_path / "first", progress=False)
    before = load_file(str(first.final / "align-adapter" / "adapter_model.safetensors"))
    assert any(float(v.abs().max()) > 0 for k, v in before.items() if "lora_B" in k)
    # a learning rate of 1e-12 keeps the weights where they start: the second run's result is the first's
    still = {"ppo": {**_cfg().ppo.model_dump(), "learning_rate": 1e-12}}
    second = align(_cfg(experimental={"init_from": str(first.final)}, **still), market, _read(market), ["2014-08"], tmp_path / "second",
                   progress=False)
    after = load_file(str(second.final / "align-adapter" / "adapter_model.safetensors"))
    assert after.keys() == before.keys() and all(torch.allclose(after[k], before[k], atol=1e-6) for k in before)
    fresh = align(_cfg(**still), market, _read(market), ["2014-08"], tmp_path / "fresh", progress=False)
    zero = load_file(str(fresh.final / "align-adapter" / "adapter_model.safetensors"))
    assert all(float(v.abs().max()) < 1e-6 for k, v in zero.items() if "lora_B" in k)
    with pytest.raises(AlignInputError, match="r=2, alpha=4"):
        align(_cfg(experimental={"init_from": str(first.final)}, lora={"r": 4, "alpha": 8}), market, _read(market), ["2014-08"],
              tmp_path / "bad", progress=False)


def test_constrained_alignment_and_prediction_never_refuse(market, tmp_path: Path) -> None:
    from kgfin.align.decoding import Decoder
    from kgfin.align.events import news_events
    from kgfin.align.impact_reward import build_impact_reward
    from kgfin.align.predict import ModelVariant, predict_events

    ppo = {**_cfg().ppo.model_dump(), "max_new_tokens": 48}
    cfg = _cfg({"constrained": True, "max_companies": 2, "calibrate_impact_type": True, "calibration_events": 3},
               ppo=ppo)
    run = align(cfg, market, _read(market), ["2014-07"], tmp_path / "run", progress=False)
    assert (run.log["refusal_rate"] == 0).all() and run.log["named"].between(1, 2).all()
    events = news_events(market, ["2014-08"], cfg.events)
    reward, events = build_impact_reward(events, market, _read(market), cfg.impact,
                                         prefix=cfg.decoding.answer_prefix)
    variant = ModelVariant("aligned", aligned_dir=run.final)
    with pytest.raises(AlignInputError, match="calibration events"):
        predict_events(variant, events, reward, _read(market), cfg, max_new_tokens=48)
    decoder = Decoder.for_months(cfg.decoding, reward.universe, market, ["2014-08"], cfg.events)
    preds = predict_events(variant, events, reward, _read(market), cfg, max_new_tokens=48, decoder=decoder)[0.0]
    assert preds and not any(p.scored.refused for p in preds)
    assert all(p.completion.endswith("}]}}") for p in preds)
    with pytest.raises(ValueError, match="calibrate_impact_type needs decoding.constrained"):
        _cfg({"calibrate_impact_type": True})
    with pytest.raises(ValueError, match="prefill_json"):
        _cfg({"constrained": True, "prefill_json": False})
    with pytest.raises(ValueError, match="algo=ppo only"):
        _cfg({"constrained": True}, algo="grpo")


def test_impact_type_calibration_is_point_in_time_and_cancels_the_mean_log_odds(market) -> None:
    from kgfin.align.calibration import calibrated_grammar, calibration_events, impact_type_offset
    from kgfin.align.impact_reward import build_impact_reward
    from kgfin.llm.grammar import AnswerGrammar
    from kgfin.llm.prompts import SYSTEM_PROMPT, event_messages

    cfg = _cfg({"constrained": True, "calibrate_impact_type": True}, ppo={"max_new_tokens": 48})
    cal = calibration_events(market, ["2014-08", "2014-07"], cfg.events, 3)
    assert cal.groupby("calibrates").size().to_dict() == {"2014-07": 3, "2014-08": 3}
    for month, part in cal.groupby("calibrates"):
        start = pd.Timestamp(f"{month}-01")
        assert (part["timestamp"] < start).all() and (part["timestamp"] >= start - pd.offsets.MonthBegin(1)).all()
        assert (part["graph_month"] == str(pd.Period(month, "M") - 1)).all()  # read with the answered month's model
    part = cal[cal["calibrates"] == "2014-08"]
    model, tok = knowledge_model(cfg, "unused", "2014-07")
    reward, _ = build_impact_reward(part, market, _read(market), cfg.impact, prefix=cfg.decoding.answer_prefix)
    grammar = AnswerGrammar.for_universe(tok, reward.universe.tickers, reward.universe.names,
                                         max_companies=cfg.decoding.max_companies, max_new_tokens=48)
    names = {t: f"{n} ({t})" for t, n in zip(reward.universe.tickers, reward.universe.names, strict=True)}
    messages, first = event_messages(part), [names[t[0]] for t in part["tickers"]]
    kwargs = {"system": SYSTEM_PROMPT, "prefix": cfg.decoding.answer_prefix}
    batched = impact_type_offset(model, tok, messages, first, grammar, **kwargs)
    one_by_one = [impact_type_offset(model, tok, [m], [f], grammar, **kwargs) for m, f in zip(messages, first, strict=True)]
    assert batched == pytest.approx(sum(one_by_one) / 3, abs=1e-4)  # left padding does not move the log-odds
    calibrated = calibrated_grammar(grammar, model, tok, reward.universe, part, messages, **kwargs)
    assert calibrated.type_bias == pytest.approx({"positive": -batched / 2, "negative": batched / 2})
    with pytest.raises(AlignInputError, match="one company per message"):
        impact_type_offset(model, tok, messages, first[:1], grammar, **kwargs)


def test_first_entry_news_opens_every_answer_with_a_company_the_news_names(market, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import kgfin.align.ppo as ppo_module
    from kgfin.align.decoding import Decoder
    from kgfin.align.events import news_events
    from kgfin.align.impact_reward import build_impact_reward
    from kgfin.align.predict import ModelVariant, predict_events

    ppo = {**_cfg().ppo.model_dump(), "max_new_tokens": 48}
    cfg = _cfg({"constrained": True, "max_companies": 2, "first_entry": "news"}, ppo=ppo)
    rolled: list[list[str]] = []
    real_rollout = ppo_module.PPOTrainer.rollout

    def recording_rollout(self, prompts, first_entries=None):
        ro = real_rollout(self, prompts, first_entries)
        rolled.extend(sorted(f) for f in first_entries)
        assert all(json.loads(cfg.decoding.answer_prefix + c)["impact_analysis"]["affected_companies"][0]["name"] in f
                   for c, f in zip(ro.completions, first_entries, strict=True))
        return ro

    monkeypatch.setattr(ppo_module.PPOTrainer, "rollout", recording_rollout)
    run = align(cfg, market, _read(market), ["2014-07"], tmp_path / "run", progress=False)
    assert rolled and (run.log["refusal_rate"] == 0).all()
    events = news_events(market, ["2014-08"], cfg.events)
    reward, events = build_impact_reward(events, market, _read(market), cfg.impact,
                                         prefix=cfg.decoding.answer_prefix)
    preds = predict_events(ModelVariant("aligned", aligned_dir=run.final), events, reward, _read(market), cfg,
                           max_new_tokens=48)[0.0]
    for p, tickers in zip(preds, events["tickers"], strict=True):
        assert next(iter(p.scored.impacts.scores)) in tickers  # the first company named is one of the news'
    names = dict(zip(reward.universe.tickers, reward.universe.names, strict=True))
    news_first = Decoder(cfg.decoding, reward.universe).first_entries(events)
    assert news_first[0] == frozenset(f"{names[t]} ({t})" for t in events["tickers"].iloc[0])
    assert Decoder(_cfg().decoding, reward.universe).first_entries(events) is None
    with pytest.raises(ValueError, match="first_entry=news needs decoding.constrained"):
        _cfg({"first_entry": "news"})


def test_saturated_share_counts_named_scores_at_the_scale_end() -> None:
    from types import SimpleNamespace

    from kgfin.align.trainer import saturated_share
    from kgfin.llm.parse import Impacts

    scored = [SimpleNamespace(impacts=Impacts(scores={"A": 10.0, "B": -3.0})),
              SimpleNamespace(impacts=Impacts(scores={"C": -10.0, "D": 2.0})), SimpleNamespace(impacts=Impacts())]
    assert saturated_share(scored) == 0.5
    assert math.isnan(saturated_share([SimpleNamespace(impacts=Impacts())]))
