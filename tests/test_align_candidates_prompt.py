"""The candidate-listing prompt (decoding.candidates_in_prompt): the focal firm's relations in the prompt, and a
grammar that lets the answer name only the focal firm and the firms listed."""

from __future__ import annotations

import random

import pandas as pd
import pytest
from test_evaluate_candidates import toy_snapshot

from kgfin.align.config import DecodingConfig, ImpactRewardConfig
from kgfin.align.decoding import Decoder
from kgfin.llm.grammar import AnswerGrammar, GrammarError, RowRule, company_labels
from kgfin.llm.parse import Universe, parse_impacts
from kgfin.llm.prompts import ANSWER_PREFIX, focal_facts


@pytest.fixture(scope="module")
def tiny():
    from kgfin.llm.models import TINY_MODEL, load_causal_lm

    return load_causal_lm(TINY_MODEL, seed=0)


def _events() -> pd.DataFrame:
    return pd.DataFrame({"event_id": ["E1"], "graph_month": ["2015-01"], "tickers": [["A0", "A9"]],
                         "headline": ["Firm A0 (A0) cuts guidance"], "body": ["Demand fell."],
                         "timestamp": [pd.Timestamp("2015-02-03 09:00")]})


def _random_answers(grammar: AnswerGrammar, tok, universe: Universe, seed: int, n: int = 30) -> list[list[str]]:
    """``n`` answers drawn token by token uniformly among what the grammar allows: the companies each names."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ids: list[int] = []
        while (allowed := grammar.allowed_after(ids)) != [tok.eos_token_id]:
            ids.append(rng.choice(allowed))
        out.append(list(parse_impacts(ANSWER_PREFIX + tok.decode(ids), universe).scores))
    return out


def test_focal_facts_are_the_focal_firms_own_relations_strongest_first() -> None:
    lines, others = focal_facts(toy_snapshot(), "A0")
    # weights 0.8, 0.7, 0.5 (SHARES_DIRECTOR), 0.5 (SUPPLIES), 0.25: ties by relation name
    assert len(lines) == 5 and others == ["A4", "A5", "A3", "A1", "A2"]
    assert lines[0] == "Firm A0 (A0) and Firm A4 (A4) are held by the same funds (overlap 0.80)"
    assert focal_facts(toy_snapshot(), "A0", limit=2)[1] == ["A4", "A5"]
    assert focal_facts(toy_snapshot(), "A11") == ([], [])


def test_decoder_lists_the_candidates_and_limits_the_names(tiny) -> None:
    snap = toy_snapshot()
    universe = Universe(tuple(snap.companies["ticker"]), tuple(snap.companies["name"]))
    cfg = DecodingConfig(constrained=True, first_entry="news", candidates_in_prompt=True, candidate_facts=3,
                         format_in_prompt=False)
    dec = Decoder(cfg, universe)
    (message,) = dec.messages(_events(), lambda m: snap)
    assert "Known relationships:" in message and "held by the same funds" in message
    assert "Answer only with JSON" not in message
    (rule,) = dec.first_entries(_events(), lambda m: snap)
    labels = company_labels(universe.tickers, universe.names)
    assert rule.names == frozenset(labels[t] for t in ("A0", "A4", "A5", "A3"))
    assert rule.first == frozenset({labels["A0"]})  # A9 is named by the news but not listed
    assert dec.first_entries(_events()) == [frozenset({labels["A0"], labels["A9"]})]  # no graph: first entries only

    _, tok = tiny
    grammar = AnswerGrammar.for_universe(tok, universe.tickers, universe.names, max_companies=6,
                                         max_new_tokens=200).with_first_entries([rule])
    seen = set()
    for named in _random_answers(grammar, tok, universe, seed=0):
        assert next(iter(named)) == "A0" and set(named) <= {"A0", "A4", "A5", "A3"}
        seen.add(len(named))
    assert max(seen) <= 4  # never more entries than listed names
    with pytest.raises(GrammarError, match="none of its first-entry"):
        grammar.with_first_entries([RowRule(first=frozenset({labels["A9"]}), names=frozenset({labels["A0"]}))])


def test_score_listed_answers_score_the_listed_firms_in_order(tiny) -> None:
    """decoding.score_listed: after the news' company the grammar writes the listed companies in the prompt's order
    (the model picks directions and sizes, and may close early), and warm-start targets follow the same order."""
    from kgfin.align.warm_start import target_answers

    snap = toy_snapshot()
    universe = Universe(tuple(snap.companies["ticker"]), tuple(snap.companies["name"]))
    labels = company_labels(universe.tickers, universe.names)
    cfg = DecodingConfig(constrained=True, first_entry="news", candidates_in_prompt=True, candidate_facts=3,
                         format_in_prompt=False, score_listed=True, max_companies=6)
    (rule,) = Decoder(cfg, universe).first_entries(_events(), lambda m: snap)
    assert rule.order == tuple(labels[t] for t in ("A4", "A5", "A3"))  # strongest relation first, as listed
    _, tok = tiny
    grammar = AnswerGrammar.for_universe(tok, universe.tickers, universe.names, max_companies=6,
                                         max_new_tokens=200).with_first_entries([rule])
    lengths = set()
    for named in _random_answers(grammar, tok, universe, seed=1):
        assert named == ["A0", "A4", "A5", "A3"][:len(named)]  # the order's prefix, nothing else
        lengths.add(len(named))
    assert 4 in lengths and len(lengths) > 1  # all of them, or closed early
    with pytest.raises(GrammarError, match="not among its allowed"):
        grammar.with_first_entries([RowRule(names=frozenset({labels["A0"]}), order=(labels["A4"],))])
    with pytest.raises(ValueError, match="score_listed needs"):
        DecodingConfig(score_listed=True)

    events = _events().assign(day=pd.Timestamp("2015-02-03"), month="2015-02")
    days = pd.bdate_range("2015-02-02", periods=6)
    resid = pd.DataFrame([(d, t, 0.001) for d in days for t in universe.tickers], columns=["date", "ticker", "resid"])
    expected = {"E1": {"A4": 0.05, "A5": -0.0001, "A3": -0.02}}  # A5 below one point: at least -1
    (answer,) = target_answers(events, lambda m: snap, resid, universe.tickers, universe.names,
                               ImpactRewardConfig(score_unit=0.01), 3, [rule.names], expected, [rule.order])
    assert [(label, s) for label, s in answer[1:]] == [(labels["A4"], 5), (labels["A5"], -1), (labels["A3"], -2)]
    assert grammar.encode_answer(tok, answer)  # the grammar could have written it
    fine = ImpactRewardConfig(score_unit=0.0005, focal_score_unit=0.001)  # the focal firm's own scale
    (answer,) = target_answers(events, lambda m: snap, resid, universe.tickers, universe.names, fine, 3,
                               [rule.names], expected, [rule.order])
    assert answer[0] == (labels["A0"], 2) and answer[1] == (labels["A4"], 10)  # moved 0.002 in days 0..1; clipped
