"""The supervised warm start: point-in-time targets built from what happened, grammar-exact tokens, a fit that
learns, and the alignment run that starts from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from text_stub import hashed_embed

from kgfin.align.config import AlignConfig, EventConfig, ImpactRewardConfig, WarmStartConfig
from kgfin.align.warm_start import (
    choice_agreement,
    supervised_fit,
    target_answers,
    warm_start_events,
)
from kgfin.data import load_market
from kgfin.data.calendar import month_bounds
from kgfin.graph.snapshot import build_snapshot
from kgfin.llm import TINY_MODEL, load_causal_lm
from kgfin.llm.grammar import SLOT_TYPE, AnswerGrammar, GrammarError, company_labels
from kgfin.llm.parse import Universe, parse_impacts
from kgfin.llm.prompts import ANSWER_PREFIX
from kgfin.market.residuals import residuals, window_moves

IMPACT = ImpactRewardConfig.model_validate({"residuals": {"window": 60, "min_obs": 40}, "horizon": 2})


@pytest.fixture(scope="module")
def market(synth_dir: Path):
    return load_market(synth_dir)


@pytest.fixture(scope="module")
def resid(market) -> pd.DataFrame:
    return residuals(market.returns, market.factors_daily, IMPACT.residuals)


def test_targets_are_point_in_time(market, resid) -> None:
    days = pd.DatetimeIndex(sorted(resid["date"].unique()))
    ev = warm_start_events(market, "2014-08", WarmStartConfig(months=2), EventConfig(), days, horizon=2)
    assert set(ev["month"]) == {"2014-06", "2014-07"}
    start = month_bounds("2014-08")[0]
    for d in ev["day"]:
        end = days[days.searchsorted(pd.Timestamp(d)) + 2]
        assert end < start  # the whole outcome window ends before the aligned month
    # the last news days of July are left out: their window runs into August
    july = warm_start_events(market, "2014-08", WarmStartConfig(months=1), EventConfig(), days, horizon=0)
    late = warm_start_events(market, "2014-08", WarmStartConfig(months=1), EventConfig(), days, horizon=5)
    assert len(late) < len(july)


def test_target_answers_name_the_focal_firm_then_the_largest_realised_moves(market, resid) -> None:
    days = pd.DatetimeIndex(sorted(resid["date"].unique()))
    ev = warm_start_events(market, "2014-08", WarmStartConfig(months=1), EventConfig(), days, horizon=2).head(5)
    tickers, names = tuple(market.companies["ticker"]), tuple(market.companies["name"])
    answers = target_answers(ev, lambda m: build_snapshot(market, m), resid, tickers, names, IMPACT, firms=3)
    labels = company_labels(tickers, names)
    moves = window_moves(resid, 2)
    for row, entries in zip(ev.itertuples(index=False), answers, strict=True):
        focal = row.tickers[0]
        assert entries[0][0] == labels[focal] and entries[0][1] != 0
        expected = int(np.clip(np.round(moves.loc[pd.Timestamp(row.day), focal] / IMPACT.score_unit), -10, 10))
        assert entries[0][1] == (expected or entries[0][1])
        assert 1 <= len(entries) <= 4 and all(s != 0 and -10 <= s <= 10 for _, s in entries)
        ripple = [abs(moves.loc[pd.Timestamp(row.day), label.rsplit("(", 1)[1][:-1]]) for label, _ in entries[1:]]
        assert ripple == sorted(ripple, reverse=True)


def test_encoded_answers_follow_the_grammar_and_parse_back() -> None:
    _, tok = load_causal_lm(TINY_MODEL)
    uni = Universe(("AAA", "BBB", "CCC"), ("Alpha Inc", "Beta Corp", "Gamma Ltd"))
    g = AnswerGrammar.for_universe(tok, uni.tickers, uni.names, max_companies=3, max_new_tokens=96)
    ids = g.encode_answer(tok, [("Alpha Inc (AAA)", -4), ("Gamma Ltd (CCC)", 2)])
    parsed = parse_impacts(ANSWER_PREFIX + tok.decode(ids), uni)
    assert parsed.scores == {"AAA": -4.0, "CCC": 2.0}
    assert g.allowed_after(ids) == [tok.eos_token_id]  # the answer is complete
    with pytest.raises(GrammarError, match="nonzero integer"):
        g.encode_answer(tok, [("Alpha Inc (AAA)", 0)])
    with pytest.raises(GrammarError, match="outside this grammar"):
        g.encode_answer(tok, [("Alpha Inc (AAA)", 1), ("Alpha Inc (AAA)", 2)])


def test_supervised_fit_lowers_the_answer_loss() -> None:
    model, tok = load_causal_lm(TINY_MODEL)
    for p in model.parameters():
        p.requires_grad_(True)
    prompts = ["news one", "news two", "news three", "news four"]
    answers = [tok(" Alpha 4", add_special_tokens=False)["input_ids"]] * 4
    losses = supervised_fit(model, tok, prompts, answers, WarmStartConfig(epochs=10, batch_size=2, loss="tokens",
                                                                          learning_rate=1e-2))
    assert len(losses) == 20 and losses[-1] < 0.2 * losses[0]  # ln(vocab) ~ 10.8 down to the answer


def test_micro_batches_take_the_same_step_as_one_pass() -> None:
    """Gradients accumulated over micro-batches (answers of different lengths) give the losses and weights of one
    pass over the whole batch: the loss is the mean over the batch's answer tokens either way."""
    import copy

    import torch

    model, tok = load_causal_lm(TINY_MODEL)
    for p in model.parameters():
        p.requires_grad_(True)
    prompts = ["news one", "a longer news item two", "three", "news four is here"]
    answers = [tok(t, add_special_tokens=False)["input_ids"] for t in (" Alpha 4", " Beta -3 and more", " G 1", " D")]
    runs = []
    for micro in (4, 1):
        m = copy.deepcopy(model)
        losses = supervised_fit(m, tok, prompts, answers, WarmStartConfig(epochs=2, batch_size=4, micro_batch_size=micro,
                                                                          loss="tokens", learning_rate=1e-2))
        runs.append((losses, [p.detach().clone() for p in m.parameters()]))
    assert runs[0][0] == pytest.approx(runs[1][0], rel=1e-4)
    # float sums in another order, scaled by Adam's normalisation: ~2e-5 apart, against steps of ~1e-2
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(runs[0][1], runs[1][1], strict=True))
    assert max(float((a - b).abs().max()) for a, b in zip(runs[0][1], model.parameters(), strict=True)) > 1e-3


def _grammar_targets(tok):
    uni = Universe(("AAA", "BBB", "CCC"), ("Alpha Inc", "Beta Corp", "Gamma Ltd"))
    grammar = AnswerGrammar.for_universe(tok, uni.tickers, uni.names, max_companies=3, max_new_tokens=96)
    entries = ([("Alpha Inc (AAA)", -4), ("Gamma Ltd (CCC)", 2)], [("Beta Corp (BBB)", 7)],
               [("Alpha Inc (AAA)", 1), ("Beta Corp (BBB)", -10), ("Gamma Ltd (CCC)", 3)], [("Gamma Ltd (CCC)", -2)])
    rules = [{"Alpha Inc (AAA)"}, None, {"Alpha Inc (AAA)", "Beta Corp (BBB)"}, {"Gamma Ltd (CCC)"}]
    return grammar, rules, [grammar.encode_answer(tok, e) for e in entries]


def test_choice_loss_is_the_grammars_log_likelihood_of_the_answers() -> None:
    """With ``loss: choices`` a step's loss is the mean negative log-probability of the answers' choices under the
    constrained sampler's distribution (computed here from the dense masks over the whole vocabulary, forced tokens
    included at log 1 = 0), and fitting raises it."""
    import torch

    model, tok = load_causal_lm(TINY_MODEL)
    for p in model.parameters():
        p.requires_grad_(True)
    grammar, rules, answers = _grammar_targets(tok)
    prompts = ["news one", "a longer news item two", "three", "news four is here"]
    with torch.no_grad():
        nll, n_choices = 0.0, 0
        for prompt, answer, rule in zip(prompts, answers, rules, strict=True):
            p = tok(prompt, add_special_tokens=False)["input_ids"]
            logits = model(input_ids=torch.tensor([p + answer])).logits[0, len(p) - 1:-1].float()
            reply, valid = torch.tensor([answer]), torch.ones(1, len(answer), dtype=torch.bool)
            g = grammar.with_first_entries([rule])
            choices = g.sampler_choices(reply, valid)
            mask, _ = choices.dense(reply, valid, logits.shape[-1])
            logp = torch.log_softmax(logits.masked_fill(~mask[0], -torch.inf), -1).gather(-1, reply.T).squeeze(-1)
            nll -= float(logp.sum())
            n_choices += len(choices.rows)
    before = choice_agreement(model, tok, prompts, answers, grammar, rules, batch_size=3)
    assert -before["logp"].mean() == pytest.approx(nll / n_choices, rel=1e-4) and len(before) == n_choices
    # one direction choice per entry (2 + 1 + 3 + 1 entries), numbered within its answer
    types = before[before["slot"] == SLOT_TYPE]
    assert types.groupby("item")["entry"].apply(list).tolist() == [[0, 1], [0], [0, 1, 2], [0]]
    cfg = WarmStartConfig(epochs=20, batch_size=4, micro_batch_size=3, learning_rate=1e-2)
    losses = supervised_fit(model, tok, prompts, answers, cfg, grammar=grammar, rules=rules)
    assert losses[0] == pytest.approx(nll / n_choices, rel=1e-4)
    assert losses[-1] < 0.3 * losses[0]
    after = choice_agreement(model, tok, prompts, answers, grammar, rules)
    assert after["hit"].mean() > before["hit"].mean() and after["logp"].mean() > before["logp"].mean()
    with pytest.raises(Exception, match="needs the answer grammar"):
        supervised_fit(model, tok, prompts, answers, cfg)


@pytest.mark.integration
def test_alignment_starts_from_the_warm_start(market, tmp_path: Path) -> None:
    from kgfin.align.trainer import align

    cfg = AlignConfig.model_validate({
        "model": TINY_MODEL, "knowledge": False, "save_steps": 1, "events": {"max_events_per_month": 2},
        "impact": {"residuals": {"window": 60, "min_obs": 40}},
        "ppo": {"batch_size": 2, "mini_batch_size": 2, "ppo_epochs": 1, "max_new_tokens": 64, "temperature": 1.0},
        "decoding": {"constrained": True, "first_entry": "news", "max_companies": 3},
        "warm_start": {"enabled": True, "months": 1, "max_events_per_month": 4, "epochs": 1, "batch_size": 2,
                       "learning_rate": 1e-2},
        "lora": {"r": 2, "alpha": 4}})
    res = align(cfg, market, lambda m: build_snapshot(market, m), ["2014-08"], tmp_path / "run", progress=False)
    ws = tmp_path / "run" / "warm_start"
    assert (ws / "align-adapter" / "adapter_config.json").exists() and (ws / "kgfin-run.json").exists()
    log = pd.read_csv(ws / "warm_start_log.csv")
    assert len(log) >= 1 and log["loss"].notna().all()
    assert len(res.log) == 1 and (res.final / "align-adapter").exists()
    # PPO's KL reference is the warm-started policy (as RLHF's is its SFT model), not the model before it: the
    # first step's policy and reference are the same weights
    assert abs(res.log["kl"].iloc[0]) < 1e-6


def test_target_answers_follow_a_teachers_expected_moves(market, resid) -> None:
    """With a teacher's expected moves the ripple entries are its largest |expected| candidates at round(move /
    score_unit) (a move under one score point left out); the focal firm keeps its realised move."""
    from kgfin.align.events import AlignInputError
    from kgfin.graph.candidates import candidate_sets

    days = pd.DatetimeIndex(sorted(resid["date"].unique()))
    ev = warm_start_events(market, "2014-08", WarmStartConfig(months=1), EventConfig(), days, horizon=2).head(3)
    tickers, names = tuple(market.companies["ticker"]), tuple(market.companies["name"])
    read = lambda m: build_snapshot(market, m)  # noqa: E731
    sets = candidate_sets(ev, read, IMPACT.random_candidates, IMPACT.candidate_seed)
    expected = {}
    for row in ev.itertuples(index=False):
        ripple = [t for t in sets[str(row.event_id)].tickers if t not in sets[str(row.event_id)].named]
        # 0.034 -> 3, -0.052 -> -5, 0.004 -> 0 (left out), every other candidate 0
        expected[str(row.event_id)] = {ripple[0]: 0.034, ripple[1]: -0.052, ripple[2]: 0.004}
    realised = target_answers(ev, read, resid, tickers, names, IMPACT, firms=3)
    taught = target_answers(ev, read, resid, tickers, names, IMPACT, firms=3, expected=expected)
    labels = company_labels(tickers, names)
    for row, got, real in zip(ev.itertuples(index=False), taught, realised, strict=True):
        ripple = [t for t in sets[str(row.event_id)].tickers if t not in sets[str(row.event_id)].named]
        assert got[0] == real[0]  # the focal firm: its realised move
        assert got[1:] == [(labels[ripple[1]], -5), (labels[ripple[0]], 3)]
    with pytest.raises(AlignInputError, match="no moves for event"):
        target_answers(ev, read, resid, tickers, names, IMPACT, firms=3, expected={})


@pytest.mark.parametrize("row", ["ridge_rule", pytest.param("gnn", marks=pytest.mark.integration)])
def test_row_teacher_scores_every_candidate_from_earlier_outcomes_only(market, resid, synth_dir: Path,
                                                                       row: str) -> None:
    """A learned row as teacher gives each warm-start event an expected move per candidate, and outcomes from the
    events' own month on do not change it (point in time)."""
    from kgfin.evaluate.teacher import row_teacher
    from kgfin.evaluate.v2 import RippleV2Config
    from kgfin.graph.candidates import candidate_sets

    cfg = AlignConfig.model_validate({"impact": IMPACT.model_dump()})
    days = pd.DatetimeIndex(sorted(resid["date"].unique()))
    ev = warm_start_events(market, "2014-08", WarmStartConfig(months=1), cfg.events, days, horizon=2)
    read = lambda m: build_snapshot(market, m)  # noqa: E731
    settings = RippleV2Config(predictor={"gnn": {"train_months": 3, "max_epochs": 10, "hidden": 8,
                                                 "min_train_events": 10}})
    teach = row_teacher(market, read, cfg, row=row, data_dir=synth_dir, settings=settings, embed=hashed_embed)
    got = teach(ev, resid)
    sets = candidate_sets(ev, read, IMPACT.random_candidates, IMPACT.candidate_seed)
    assert set(got) == set(ev["event_id"].astype(str))
    for eid, moves in got.items():
        assert set(sets[eid].tickers) <= set(moves) and all(np.isfinite(v) for v in moves.values())
    assert any(abs(v) > 0 for moves in got.values() for v in moves.values())
    later = resid.copy()
    start = pd.Timestamp(month_bounds("2014-07")[0])
    later.loc[later["date"] >= start, "resid"] = 0.5  # every outcome from the events' month on changed
    assert teach(ev, later) == got


def test_row_teacher_names_the_rows_it_knows(market) -> None:
    from kgfin.align.events import AlignInputError
    from kgfin.evaluate.teacher import TEACHERS, row_teacher

    with pytest.raises(AlignInputError, match="no warm-start teacher 'oracle'"):
        row_teacher(market, lambda m: build_snapshot(market, m), AlignConfig(), row="oracle")
    assert set(TEACHERS) == set(WarmStartConfig.model_fields["target"].annotation.__args__) - {"realised"}
