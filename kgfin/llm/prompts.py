"""The analyst prompt for ripple prediction (after FinRipple appendix C.2).

The model reads one news item and answers with JSON (one entry per affected company)::

    {"impact_analysis": {"affected_companies": [{"name": ..., "impact_type": ..., "impact_score": ...}],
                         "analysis": ...}}

``impact_score`` is in [-10, 10] (negative = price falls). The format in the prompt is a
template with placeholders (``<company name> (<TICKER>)``), not an example with names: an
answer that copies it parses as a refusal and earns nothing (see :mod:`kgfin.llm.parse`),
and a small model has no example companies to parrot.
:data:`ANSWER_PREFIX` can be prefilled as the start of the assistant's turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from kgfin.graph.snapshot import GraphSnapshot

__all__ = ["ANSWER_PREFIX", "EXAMPLE_COMPANIES", "SYSTEM_PROMPT", "analyst_prompt", "event_messages", "focal_facts",
           "relation_fact"]

SYSTEM_PROMPT = "You are a financial analyst who knows how companies are connected."

EXAMPLE_COMPANIES = ("<company name>",)

# Prefilled start of the assistant's answer: small models (SmolLM2-135M) otherwise answer in
# prose and never in JSON; with it they continue with a company name. The model's
# completion is parsed as ANSWER_PREFIX + completion.
ANSWER_PREFIX = '{"impact_analysis": {"affected_companies": [{"name": "'

_FORMAT = (
    '{"impact_analysis": {"affected_companies": ['
    '{"name": "<company name> (<TICKER>)", "impact_type": "<positive or negative>", '
    '"impact_score": "<integer from -10 to 10>"}], '
    '"analysis": "<one sentence>"}}'
)


def analyst_prompt(headline: str, body: str, date: str, context: str | None = None, answer_format: bool = True) -> str:
    """The user message for one news item; ``context`` adds graph facts (RAG / zero-shot baselines).

    ``answer_format=False`` leaves out the JSON format line (about 90 of the prompt's 250 tokens): under
    constrained decoding (:mod:`kgfin.llm.grammar`) the grammar writes the format, so every pass over the
    prompt (rollout, reference, policy update) is that much shorter.
    """
    parts = [
        f"News ({date}): {headline}",
        body,
        "",
    ]
    if context:
        parts += ["Known relationships:", context, ""]
    parts += [
        "Which listed companies will this news move, and how strongly? Start with the company named in the news, "
        "then the suppliers, customers, competitors and other related firms it affects. Say whether each one's "
        "price rises (positive) or falls (negative) and score it from -10 (strong fall) to 10 (strong rise). "
        "Use the companies' names and tickers.",
    ]
    if answer_format:
        parts.append(f"Answer only with JSON in this format: {_FORMAT}")
    return "\n".join(parts)


def event_messages(events: pd.DataFrame, answer_format: bool = True) -> list[str]:
    """The analyst prompt (user message) of each event (rows with ``headline``, ``body``, ``timestamp``)."""
    return [analyst_prompt(h, b, pd.Timestamp(t).strftime("%Y-%m-%d"), answer_format=answer_format)
            for h, b, t in zip(events["headline"], events["body"], events["timestamp"], strict=True)]


_FACT = {  # one sentence per relation type (source s, target t, weight w)
    "SUPPLIES": "{s} supplies {t} ({w:.0%} of {t_short}'s purchases)",
    "SHARES_DIRECTOR": "{s} and {t} share a director",
    "CO_HELD": "{s} and {t} are held by the same funds (overlap {w:.2f})",
    "TECH_SIMILAR": "{s} and {t} have similar patents (similarity {w:.2f})",
}


def relation_fact(relation: str, source: str, target: str, weight: float, names: Mapping[str, str]) -> str:
    """One graph edge as a sentence naming both companies as ``"Name (TICKER)"``."""
    return _FACT[relation].format(s=f"{names[source]} ({source})", t=f"{names[target]} ({target})", t_short=target,
                                  w=weight)


def focal_facts(snapshot: GraphSnapshot, focal: str, limit: int | None = None) -> tuple[list[str], list[str]]:
    """The focal firm's own relations in the month graph as sentences (strongest first, ``limit`` of them), and the
    companies they name besides the focal firm, in the order first named: what the candidate-listing prompt shows
    (``decoding.candidates_in_prompt``) and the names its answer may use."""
    edges = snapshot.edge_table()
    edges = edges[(edges["source"] == focal) | (edges["target"] == focal)]
    edges = edges.sort_values(["weight", "relation", "source", "target"], ascending=[False, True, True, True])
    if limit is not None:
        edges = edges.head(limit)
    names = dict(zip(snapshot.companies["ticker"], snapshot.companies["name"], strict=True))
    lines = [relation_fact(r.relation, r.source, r.target, r.weight, names) for r in edges.itertuples()]
    others = list(dict.fromkeys(r.target if r.source == focal else r.source for r in edges.itertuples()))
    return lines, others
