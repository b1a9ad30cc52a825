"""Batch calibration of the impact type: cancel the model's prior for "positive" over "negative".

After any news item SmolLM2-135M (with or without a knowledge adapter) prefers "positive" to
"negative" by about 4 nats, while its log-odds move by only ~0.5 nats from item to item; those
movements correlate ~0.6 with the planted shock (``eval/sign_probe.py``). Greedy answers are then
always positive and sampled ones rarely negative, so neither the evaluation nor PPO's reward sees
the direction the model does know. Batch calibration (Zhou et al., 2023, "Batch Calibration:
Rethinking Calibration for In-Context Learning and Prompt Engineering") estimates such a
contextual prior as the mean log-odds over a batch of unlabelled inputs and subtracts it.

Here the batch is up to ``AlignConfig.calibration_events`` news items of the month *before* the
answered month (point in time: every item is dated before the first answer it calibrates, and no
outcome is read), rendered with the same prompt and model as the answers. The log-odds are read
where the constrained grammar decides the first entry's impact type, with the item's focal company
as that entry; the grammar then adds ``-offset / 2`` to "positive" and ``+offset / 2`` to
"negative" (:meth:`kgfin.llm.grammar.AnswerGrammar.with_type_bias`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kgfin.align.config import EventConfig
from kgfin.align.events import AlignInputError, news_events
from kgfin.data.calendar import add_months
from kgfin.llm.grammar import AnswerGrammar, company_labels, type_stem

if TYPE_CHECKING:
    from kgfin.data import MarketData
    from kgfin.llm.parse import Universe

__all__ = ["calibrated_grammar", "calibration_events", "impact_type_offset"]

logger = logging.getLogger(__name__)

def calibration_events(market: MarketData, months: Sequence[str], events: EventConfig, n: int) -> pd.DataFrame:
    """For each news month ``m`` of ``months``: up to ``n`` news events of month ``m - 1`` dated before ``m``, with
    ``graph_month`` set to the graph month of ``m`` (they are read with ``m``'s model) and ``calibrates = m``."""
    frames = []
    for m in sorted(set(months)):
        prev = news_events(market, [add_months(m, -1)], events.model_copy(update={"max_events_per_month": n}))
        prev = prev[prev["timestamp"] < pd.Timestamp(f"{m}-01")]
        frames.append(prev.assign(graph_month=add_months(m, -events.graph_lag_months), calibrates=m))
    return pd.concat(frames, ignore_index=True)


def impact_type_offset(model: Any, tokenizer: Any, messages: Sequence[str], first_names: Sequence[str],
                       grammar: AnswerGrammar, *, system: str, prefix: str, batch_size: int = 8) -> float:
    """Mean over items of logit("positive") - logit("negative") at the first entry's impact type.

    ``messages``: user prompts; ``first_names``: the ``"Name (TICKER)"`` written as each answer's
    first company. The logits are the grammar's first tokens of the two types (the only tokens it
    allows there), so the difference is the constrained log-odds.
    """
    import torch

    from kgfin.llm.generate import chat_prompts

    if len(messages) != len(first_names) or not messages:
        raise AlignInputError(f"impact-type calibration needs one company per message and at least one message, got "
                              f"{len(messages)} messages and {len(first_names)} names")
    tokens = grammar.type_first_tokens
    if not {"positive", "negative"} <= set(tokens):
        raise AlignInputError(f"impact-type calibration needs the types positive and negative, the grammar has "
                              f"{sorted(tokens)}")
    stems = [p + type_stem(name) for p, name in zip(chat_prompts(tokenizer, messages, system, prefix), first_names,
                                                     strict=True)]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    margins = []
    try:
        for lo in range(0, len(stems), batch_size):
            enc = tokenizer(stems[lo:lo + batch_size], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(model.device)
            pos = (enc["attention_mask"].cumsum(1) - 1).clamp(min=0)
            with torch.no_grad():
                logits = model(**enc, position_ids=pos, logits_to_keep=1).logits[:, -1].float()
            margins += (logits[:, tokens["positive"]] - logits[:, tokens["negative"]]).tolist()
    finally:
        tokenizer.padding_side = side
    return float(np.mean(margins))


def calibrated_grammar(grammar: AnswerGrammar, model: Any, tokenizer: Any, universe: Universe,
                       calibration: pd.DataFrame, messages: Sequence[str], *, system: str, prefix: str,
                       what: str = "") -> AnswerGrammar:
    """``grammar`` with the impact-type bias that cancels ``model``'s mean log-odds over ``calibration``'s events
    (their focal companies first, written as in ``universe``; ``messages`` are their prompts, in order)."""
    names = company_labels(universe.tickers, universe.names)
    keep = [k for k, t in enumerate(calibration["tickers"]) if t and t[0] in names]
    if not keep:
        raise AlignInputError(f"impact-type calibration{what}: none of the {len(calibration)} calibration events names "
                              "a company of the universe first")
    offset = impact_type_offset(model, tokenizer, [messages[k] for k in keep],
                                [names[calibration["tickers"].iloc[k][0]] for k in keep], grammar,
                                system=system, prefix=prefix)
    logger.info("impact-type calibration%s: mean log-odds positive - negative %+.3f over %d events", what, offset,
                len(keep))
    return grammar.with_type_bias({"positive": -offset / 2, "negative": offset / 2})
