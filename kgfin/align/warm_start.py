"""Supervised warm start of alignment (``align.warm_start``): teach the policy answers built from what happened.

Before PPO, the alignment LoRA is fine-tuned (causal-LM loss on the answer tokens only) on earlier news
items answered with their realised outcome:

* the focal firm (first, as ``decoding.first_entry: news`` demands) with its own residual move over
  days ``d .. d + horizon``, and
* the ``firms`` candidates of the event (:mod:`kgfin.graph.candidates`, the rows the ripple evaluation
  scores) that the news does not name and whose target move is largest: by default (``target: realised``)
  their residual move in that window; with ``target: ridge_rule`` the move a teacher expects (a
  :data:`WarmStartTeacher`, e.g. the ripple evaluation's point-in-time ridge on relation strengths,
  :func:`kgfin.evaluate.teacher.ridge_teacher`): at the ripple's signal-to-noise a realised move is mostly
  noise, an expected one is what a model could learn from the text and the graph,

each at ``round(move / score_unit)`` clipped to [-10, 10] (a move too small for one score point is left
out; the focal firm keeps at least +-1 and is always its realised move). Answers are tokenised slot by slot as the answer grammar's
tries are (:meth:`~kgfin.llm.grammar.AnswerGrammar.encode_answer`), so they are answers the constrained
sampler could have produced.

**Point in time**: the events come from the ``months`` news months before the first aligned month, and
an event is a target only if its whole outcome window (its last trading day ``d + horizon``) ends before
that month begins. :func:`warm_start_events` applies both rules; a test checks them.

The result is an alignment folder like ``kgfin align``'s ``final/`` (``OUT/warm_start/``), which the
ripple evaluation scores as its own row (``warm_start``), so the gain of PPO on top of it is visible.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from kgfin.align.config import ImpactRewardConfig, WarmStartConfig
from kgfin.align.events import AlignInputError, news_events
from kgfin.data.calendar import add_months, month_bounds
from kgfin.data.loaders import MarketData
from kgfin.graph.candidates import candidate_sets
from kgfin.graph.snapshot import GraphSnapshot
from kgfin.llm.grammar import company_labels
from kgfin.market.residuals import window_moves

__all__ = ["WarmStartConfig", "WarmStartTeacher", "supervised_fit", "target_answers", "warm_start_events"]

log = logging.getLogger(__name__)

WarmStartTeacher = Callable[[pd.DataFrame, pd.DataFrame], dict[str, dict[str, float]]]
"""(warm-start events, long residuals) -> per event id, the expected window move of each of its candidates (return
units). It may only use outcomes whose window ended before the event's month (point in time)."""


def _window_end(days: pd.DatetimeIndex, day: pd.Timestamp, horizon: int) -> pd.Timestamp | None:
    """The trading day ``horizon`` days after ``day`` (``days``: the sorted trading days), None past the data."""
    pos = int(days.searchsorted(day))
    return days[pos + horizon] if pos + horizon < len(days) else None


def warm_start_events(market: MarketData, first_month: str, config: WarmStartConfig, events_cfg: Any,
                      trading_days: pd.DatetimeIndex, horizon: int) -> pd.DataFrame:
    """The news items the warm start may learn from before ``first_month``: those of the ``config.months`` months
    before it whose outcome window (``horizon`` trading days after the event day) ends before ``first_month``
    begins. ``events_cfg``: the alignment's :class:`~kgfin.align.config.EventConfig` (graph lag, minimum names)."""
    months = [add_months(first_month, -k) for k in range(config.months, 0, -1)]
    cfg = events_cfg.model_copy(update={"max_events_per_month": config.max_events_per_month})
    events = news_events(market, months, cfg)
    start = pd.Timestamp(month_bounds(first_month)[0])
    ends = [_window_end(trading_days, pd.Timestamp(d), horizon) for d in events["day"]]
    keep = np.array([e is not None and e < start for e in ends], dtype=bool)
    return events[keep].reset_index(drop=True)


def target_answers(events: pd.DataFrame, read_snapshot: Callable[[str], GraphSnapshot], resid: pd.DataFrame,
                   tickers: Sequence[str], names: Sequence[str], impact: ImpactRewardConfig, firms: int,
                   allowed: Sequence[Collection[str] | None] | None = None,
                   expected: Mapping[str, Mapping[str, float]] | None = None) -> list[list[tuple[str, int]]]:
    """Per event, the answer built from what happened: ``[(company label, score), ...]``, focal firm first (module
    docstring). ``resid``: long residuals (:func:`kgfin.market.residuals`); ``allowed``: per event, the company
    labels its answer may name (the candidates its prompt lists), None for any; ``expected``: per event id, the
    ripple firms' target moves (a teacher's, instead of the realised ones; a candidate it does not score is 0)."""
    moves = window_moves(resid, impact.horizon)
    sets = candidate_sets(events, read_snapshot, impact.random_candidates, impact.candidate_seed)
    labels = company_labels(tickers, names)
    out = []
    for row in events.itertuples(index=False):
        day, focal = pd.Timestamp(row.day), str(row.tickers[0])
        if day not in moves.index:
            raise AlignInputError(f"event {row.event_id}: no residual moves on {day.date()}")
        mv = moves.loc[day]
        f_move = float(mv.get(focal, np.nan))
        f_score = int(np.clip(np.round(f_move / impact.score_unit), -10, 10)) if math.isfinite(f_move) else 0
        entries = [(labels[focal], f_score or (1 if f_move >= 0 else -1))]
        cand = sets[str(row.event_id)]
        ok = None if allowed is None else allowed[len(out)]
        if expected is None:
            target = {t: float(mv.get(t, np.nan)) for t in cand.tickers}
        else:
            if str(row.event_id) not in expected:
                raise AlignInputError(f"warm start: the teacher gave no moves for event {row.event_id}")
            target = {t: float(expected[str(row.event_id)].get(t, 0.0)) for t in cand.tickers}
        ripple = [t for t in cand.tickers if t not in cand.named and math.isfinite(target[t])
                  and (ok is None or labels[t] in ok)]
        ranked = sorted(ripple, key=lambda t: (-abs(target[t]), t))
        for t in ranked[:firms]:
            s = int(np.clip(np.round(target[t] / impact.score_unit), -10, 10))
            if s != 0:
                entries.append((labels[t], s))
        out.append(entries)
    return out


def supervised_fit(model: Any, tokenizer: Any, prompts: Sequence[str], answers: Sequence[Sequence[int]],
                   config: WarmStartConfig, progress: bool = False) -> list[float]:
    """Fine-tune ``model``'s trainable parameters on (chat-formatted prompt, answer token ids) pairs with the causal-LM
    loss (mean cross-entropy over a batch's answer tokens), accumulated over micro-batches of
    ``config.micro_batch_size`` (the same step as one pass, in less memory). Returns the loss of each gradient step."""
    import torch
    from tqdm.auto import tqdm

    if len(prompts) != len(answers) or not prompts:
        raise AlignInputError(f"warm start needs one answer per prompt and at least one ({len(prompts)} prompts, "
                              f"{len(answers)} answers)")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise AlignInputError("the warm start's model has no trainable parameters")
    device = next(model.parameters()).device
    opt = torch.optim.AdamW(params, lr=config.learning_rate)
    pad = tokenizer.pad_token_id
    rows = [(tokenizer(p, add_special_tokens=False)["input_ids"], list(a)) for p, a in zip(prompts, answers,
                                                                                         strict=True)]
    rng = np.random.default_rng(config.seed)
    losses: list[float] = []
    steps = config.epochs * math.ceil(len(rows) / config.batch_size)
    model.train()
    with tqdm(total=steps, desc="warm start", disable=not progress) as bar:
        for _ in range(config.epochs):
            order = rng.permutation(len(rows))
            for lo in range(0, len(rows), config.batch_size):
                batch = [rows[i] for i in order[lo:lo + config.batch_size]]
                tokens = sum(len(a) for _, a in batch)
                opt.zero_grad()
                loss = 0.0
                for mlo in range(0, len(batch), config.micro_batch_size):  # gradients accumulate over micro-batches
                    part = _answer_loss(model, batch[mlo:mlo + config.micro_batch_size], pad, device) / tokens
                    part.backward()
                    loss += float(part.detach())
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                losses.append(loss)
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    log.info("warm start: %d answers, %d steps, loss %.3f -> %.3f", len(rows), len(losses), losses[0], losses[-1])
    return losses


def _answer_loss(model: Any, batch: Sequence[tuple[list[int], list[int]]], pad: int, device: Any) -> Any:
    """Summed cross-entropy of the answer tokens of (prompt ids, answer ids) rows. Rows are left-padded, so every
    answer ends its row and the vocabulary logits are computed for the answer span only."""
    import torch

    width = max(len(p) + len(a) for p, a in batch)
    span = max(len(a) for _, a in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    labels = torch.full((len(batch), span), -100, dtype=torch.long)
    att = torch.zeros((len(batch), width), dtype=torch.long)
    for r, (p, a) in enumerate(batch):
        ids[r, width - len(p) - len(a):] = torch.tensor(p + a)
        att[r, width - len(p) - len(a):] = 1
        labels[r, span - len(a):] = torch.tensor(a)
    pos = (att.cumsum(1) - 1).clamp(min=0)
    out = model(input_ids=ids.to(device), attention_mask=att.to(device), position_ids=pos.to(device),
                logits_to_keep=span + 1)
    logits = out.logits[:, :-1].float()  # position i predicts token i + 1: the last `span` tokens
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.to(device).reshape(-1),
                                             ignore_index=-100, reduction="sum")
