"""The candidate-listing prompt (decoding.candidates_in_prompt): the focal firm's relations in the prompt, and a
grammar that lets the answer name only the focal firm and the firms listed."""

from __future__ import annotations

import random

import pandas as pd
import pytest
from test_evaluate_candidates import toy_snapshot

from kgfin.align.config import DecodingConfig
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
    rng = random.Random(0)
    seen = set()
    for _ in range(30):
        ids: list[int] = []
        while (allowed := grammar.allowed_after(ids)) != [tok.eos_token_id]:
            ids.append(rng.choice(allowed))
        named = parse_impacts(ANSWER_PREFIX + tok.decode(ids), universe).scores
        assert next(iter(named)) == "A0" and set(named) <= {"A0", "A4", "A5", "A3"}
        seen.add(len(named))
    assert max(seen) <= 4  # never more entries than listed names
    with pytest.raises(GrammarError, match="none of its first-entry"):
        grammar.with_first_entries([RowRule(first=frozenset({labels["A9"]}), names=frozenset({labels["A0"]}))])
