"""Hand-written headlines a new user would try (a CEO appointment, a fire at a chip supplier's fab, a guidance cut),
answered by the shipped SmolLM2-135M through ``kgfin predict``'s path with the default decoding (the answer
grammar): a regression check of answer *validity* (strict JSON, known companies, integer scores whose sign agrees
with the stated impact type), not of the scores themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from kgfin.align.config import AlignConfig
from kgfin.align.predict import predict_news
from kgfin.data import load_market
from kgfin.graph.snapshot import build_snapshot
from kgfin.llm.prompts import ANSWER_PREFIX

pytestmark = pytest.mark.integration

HEADLINES = Path(__file__).parent / "fixtures" / "headlines.csv"


def headline_news(companies: pd.DataFrame, when: pd.Timestamp) -> pd.DataFrame:
    """The fixture's headlines about the market's first two companies, as a news table."""
    a, b = companies.iloc[0], companies.iloc[1]
    fill = {"a": a["name"], "ta": a["ticker"], "b": b["name"], "tb": b["ticker"]}
    rows = pd.read_csv(HEADLINES)
    return pd.DataFrame({
        "id": [f"H{i}" for i in range(len(rows))], "timestamp": [when] * len(rows),
        "tickers": [[a["ticker"], b["ticker"]] if "{tb}" in body else [a["ticker"]] for body in rows["body"]],
        "headline": [h.format(**fill) for h in rows["headline"]], "body": [t.format(**fill) for t in rows["body"]],
    })


def test_hand_written_headlines_get_valid_answers_by_default(synth_dir: Path) -> None:
    market = load_market(synth_dir)
    months = sorted(pd.DatetimeIndex(market.returns["date"]).to_period("M").astype(str).unique())
    snapshots = {m: build_snapshot(market, m) for m in months[-3:-1]}
    when = pd.Timestamp(f"{months[-1]}-10 09:00")
    cfg = AlignConfig(knowledge=False)
    assert cfg.decoding.constrained  # the user-facing default
    news = headline_news(market.companies, when)
    preds, _ = predict_news(news, market, snapshots.__getitem__, cfg, method="knowledge")
    known = set(market.companies["ticker"])
    labels = {f"{n} ({t})" for n, t in zip(market.companies["name"], market.companies["ticker"], strict=True)}
    assert len(preds) == len(news)
    for pred in preds:
        assert pred.completion.startswith(ANSWER_PREFIX)  # the prefilled opening, then the model's own tokens
        answer = json.loads(pred.completion)  # strict JSON, no lenient repair
        entries = answer["impact_analysis"]["affected_companies"]
        assert 1 <= len(entries) <= cfg.decoding.max_companies
        for entry in entries:
            assert entry["name"] in labels
            score = int(entry["impact_score"])
            assert score != 0 and -10 <= score <= 10
            assert (score > 0) == (entry["impact_type"] == "positive")
        impacts = pred.scored.impacts
        assert not impacts.refused and not impacts.unknown and set(impacts.scores) <= known
