"""One answer decoder for every place a language model answers: PPO rollouts, prediction, evaluation.

A :class:`Decoder` is built once from a :class:`~kgfin.align.config.DecodingConfig`, the
company universe and the news months it will answer. It owns what the decoding settings
imply:

* the prefilled answer prefix (``prefill_json``);
* the constrained-decoding grammar over the universe (``constrained``, ``max_companies``),
  calibrated per graph month on the previous month's news when ``calibrate_impact_type``
  is on (:mod:`kgfin.align.calibration`);
* the per-event first entries (``first_entry: news``);
* the prompts (``format_in_prompt``, and the focal firm's relations with ``candidates_in_prompt``)
  and, with the candidate list, which companies each answer may name.

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
    from kgfin.graph.snapshot import GraphSnapshot
    from kgfin.llm.grammar import AnswerGrammar, RowRule

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
        # (graph month, focal firm) -> its relation sentences and the firms they name: prompts and grammar rows
        # read the same lists, so each is built once
        self._focal_facts: dict[tuple[str, str], tuple[list[str], list[str]]] = {}

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

    def messages(self, events: pd.DataFrame, read_snapshot: Callable[[str], GraphSnapshot] | None = None
                 ) -> list[str]:
        """The analyst prompts (user messages) of ``events``, with the JSON format line where the settings show it
        and, with ``candidates_in_prompt``, the focal firm's relations in the event's graph month (``read_snapshot``
        required then)."""
        from kgfin.llm.prompts import analyst_prompt, event_messages

        if not self.cfg.candidates_in_prompt:
            return event_messages(events, answer_format=self.cfg.format_in_prompt)
        facts = self._facts(events, read_snapshot)
        return [analyst_prompt(r.headline, r.body, pd.Timestamp(r.timestamp).strftime("%Y-%m-%d"),
                               context="\n".join(f[0]), answer_format=self.cfg.format_in_prompt)
                for r, f in zip(events.itertuples(index=False), facts, strict=True)]

    def _facts(self, events: pd.DataFrame, read_snapshot: Callable[[str], GraphSnapshot] | None
               ) -> list[tuple[list[str], list[str]]]:
        """Per event, :func:`~kgfin.llm.prompts.focal_facts` of its focal firm in its graph month (each graph month
        read once, each (month, firm) built once per decoder)."""
        from kgfin.llm.prompts import focal_facts

        if read_snapshot is None:
            raise AlignInputError("decoding.candidates_in_prompt needs the month graphs (read_snapshot)")
        keys = [(str(r.graph_month), str(r.tickers[0])) for r in events.itertuples(index=False)]
        for month in {m for m, f in keys if (m, f) not in self._focal_facts}:
            snapshot = read_snapshot(month)
            for key in {k for k in keys if k[0] == month}:
                self._focal_facts[key] = focal_facts(snapshot, key[1], self.cfg.candidate_facts)
        return [self._focal_facts[k] for k in keys]

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

    def first_entries(self, events: pd.DataFrame, read_snapshot: Callable[[str], GraphSnapshot] | None = None
                      ) -> list[Collection[str] | RowRule | None] | None:
        """Per event (rows of ``events``), what its answer may name under the grammar: None with ``first_entry: any``
        (and no candidate list); with ``news``, the news' companies of the universe as the grammar writes them (None
        for an item that names none of them) as its first entry; with ``candidates_in_prompt`` (constrained), a
        :class:`~kgfin.llm.grammar.RowRule` that also limits every entry to the focal firm and the firms its prompt
        lists (with ``score_listed``, in the order listed; without ``read_snapshot``: the first entries only, for
        prompts that carry no candidate list)."""
        from kgfin.llm.grammar import RowRule, company_labels

        labels = company_labels(self.universe.tickers, self.universe.names)
        first = ([frozenset(labels[t] for t in tickers if t in labels) or None for tickers in events["tickers"]]
                 if self.cfg.first_entry == "news" else [None] * len(events))
        if not (self.cfg.candidates_in_prompt and self.cfg.constrained and read_snapshot is not None):
            return None if self.cfg.first_entry == "any" else first
        facts = self._facts(events, read_snapshot)
        rules: list[Collection[str] | RowRule | None] = []
        for f, r, (_, others) in zip(first, events.itertuples(index=False), facts, strict=True):
            names = frozenset(labels[t] for t in [str(r.tickers[0]), *others] if t in labels)
            order = tuple(labels[t] for t in others if t in labels) if self.cfg.score_listed else ()
            rules.append(RowRule(first=f if f is None else f & names or None, names=names or None,
                                 order=order or None))
        return rules
