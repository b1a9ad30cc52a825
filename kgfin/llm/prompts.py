"""The analyst prompt for ripple prediction (after FinRipple appendix C.2).

The model reads one news item and answers with JSON::

    {"impact_analysis": {"affected_companies": [{"name": ..., "impact_type": ..., "impact_score": ...}],
                         "analysis": ...}}

``impact_score`` is in [-10, 10] (negative = price falls). The format example in the
prompt names placeholder companies that exist in no universe, so an answer that copies the
example parses as a refusal and earns nothing (see :mod:`kgfin.llm.parse`).
"""

from __future__ import annotations

__all__ = ["EXAMPLE_COMPANIES", "SYSTEM_PROMPT", "analyst_prompt"]

SYSTEM_PROMPT = "You are a financial analyst who knows how companies are connected."

EXAMPLE_COMPANIES = ("Example Corp", "Sample Industries")

_FORMAT = (
    '{"impact_analysis": {"affected_companies": ['
    '{"name": "Example Corp (EXC)", "impact_type": "direct", "impact_score": -6}, '
    '{"name": "Sample Industries (SMP)", "impact_type": "supplier", "impact_score": 3}], '
    '"analysis": "one sentence"}}'
)


def analyst_prompt(headline: str, body: str, date: str, context: str | None = None) -> str:
    """The user message for one news item; ``context`` adds graph facts (RAG / zero-shot baselines)."""
    parts = [
        f"News ({date}): {headline}",
        body,
        "",
    ]
    if context:
        parts += ["Known relationships:", context, ""]
    parts += [
        "Which listed companies will this news move, and how strongly? Include the company named in the news "
        "and the suppliers, customers, competitors and other related firms it affects. Score each from -10 "
        "(strong fall) to 10 (strong rise). Use the companies' tickers.",
        f"Answer only with JSON in this format: {_FORMAT}",
    ]
    return "\n".join(parts)
