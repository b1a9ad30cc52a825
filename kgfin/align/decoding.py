"""One answer decoder for every place a language model answers: PPO rollouts, prediction, evaluation.

A :class:`Decoder` is built once from a :class:`~kgfin.align.config.DecodingConfig`, the
company universe and the news months it will answer. It owns what the decoding settings
imply:

* the prefilled answer prefix (``prefill_json``);
* the constrained-decoding grammar over the universe (``constrained``, ``max_companies``),
  calibrated per graph month on the previous month's news when ``calibrate_impact_type``
  is on (:mod:`kgfin.align.calibration`);
* the per-event first entries (``first_entry: news``).

Callers ask it for a month's grammar once they have that month's model, and for each
batch's first entries; none of them repeats the calibration logic.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from kgfin.align.calibration import calibrated_grammar, calibration_events
from kgfin.align.config import DecodingConfig, EventConfig
from kgfin.align.events import AlignInputError
from kgfin.llm.parse import Universe
from kgfin.llm.prompts import SYSTEM_PROMPT

if TYPE_CHECKING:
    from kgfin.data import MarketData
    from kgfin.llm.grammar import AnswerGrammar

__all__ = ["Decoder"]


class Decoder:
    """The decoding settings made concrete for one universe and set of news months (see the module docstring).

    ``calibration``: the calibration events of every answered month
    (:func:`~kgfin.align.calibration.calibration_events`), required with ``calibrate_impact_type``.
    """

    def __init__(self, config: DecodingConfig, universe: Universe, calibration: pd.DataFrame | None = None):
        if config.calibrate_impact_type and calibration is None:
            raise AlignInputError("calibrate_impact_type needs calibration events (the previous month's news)")
        self.cfg, self.universe, self.calibration = config, universe, calibration

    @classmethod
    def for_months(cls, config: DecodingConfig, universe: Universe, market: MarketData, months: Sequence[str],
                   events: EventConfig) -> Decoder:
        """The decoder for news of ``months``: reads the calibration events from ``market`` when calibrating."""
        calibration = None
        if config.calibrate_impact_type:
            calibration = calibration_events(market, sorted(set(months)), events, config.calibration_events)
        return cls(config, universe, calibration)

    @property
    def prefix(self) -> str:
        """The prefilled start of every answer."""
        return self.cfg.answer_prefix

    @property
    def stop_at_json_end(self) -> bool:
        return self.cfg.stop_at_json_end

    def messages(self, events: pd.DataFrame) -> list[str]:
        """The analyst prompts (user messages) of ``events``, with the JSON format line where the settings show it."""
        from kgfin.llm.prompts import event_messages

        return event_messages(events, answer_format=self.cfg.format_in_prompt)

    def grammar(self, model: Any, tokenizer: Any, graph_month: str, max_new_tokens: int,
                messages: Callable[[pd.DataFrame], list[str]], what: str = "") -> AnswerGrammar | None:
        """The grammar answers read with ``graph_month``'s ``model`` are decoded in (None unconstrained).

        With ``calibrate_impact_type`` the grammar carries the impact-type bias measured on that
        graph month's calibration events, prompted by ``messages(events)`` as the answers are.
        """
        if not self.cfg.constrained:
            return None
        from kgfin.llm.grammar import AnswerGrammar

        grammar = AnswerGrammar.for_universe(tokenizer, self.universe.tickers, self.universe.names,
                                             max_companies=self.cfg.max_companies, max_new_tokens=max_new_tokens)
        if self.calibration is None:
            return grammar
        cal = self.calibration[self.calibration["graph_month"] == graph_month]
        return calibrated_grammar(grammar, model, tokenizer, self.universe, cal, messages(cal), system=SYSTEM_PROMPT,
                                  prefix=self.prefix, what=f"{what} (graph month {graph_month})")

    def first_entries(self, events: pd.DataFrame) -> list[Collection[str] | None] | None:
        """Per event (rows of ``events``), the companies its answer must open with: None with ``first_entry: any``;
        with ``news``, the news' companies of the universe as the grammar writes them (None for an item that names
        none of them)."""
        if self.cfg.first_entry == "any":
            return None
        from kgfin.llm.grammar import company_labels

        labels = company_labels(self.universe.tickers, self.universe.names)
        return [frozenset(labels[t] for t in tickers if t in labels) or None for tickers in events["tickers"]]
