"""Supervised warm start of alignment (``align.warm_start``): teach the policy answers built from what happened.

Before PPO, the alignment LoRA is fine-tuned on earlier news items answered with their realised outcome (by
default the answers' log-likelihood under the answer grammar, where it leaves the model a choice:
``warm_start.loss``):

* the focal firm (first, as ``decoding.first_entry: news`` demands) with its own residual move over
  days ``d .. d + horizon``, and
* the ``firms`` candidates of the event (:mod:`kgfin.graph.candidates`, the rows the ripple evaluation
  scores) that the news does not name and whose target move is largest: by default (``target: realised``)
  their residual move in that window; with ``target: ridge_rule`` or ``gnn`` the move a teacher expects (a
  :data:`WarmStartTeacher`: the ripple evaluation's point-in-time ridge on relation strengths or its relational
  GNN, :func:`kgfin.evaluate.teacher.row_teacher`): at the ripple's signal-to-noise a realised move is mostly
  noise, an expected one is what a model could learn from the text and the graph,

each at ``round(move / score_unit)`` clipped to [-10, 10] (a move too small for one score point is left
out; the focal firm keeps at least +-1, is always its realised move, and is in ``focal_score_unit`` if set).
Answers are tokenised slot by slot as the answer grammar's tries are (:meth:`~kgfin.llm.grammar.AnswerGrammar.encode_answer`), so they are answers the constrained
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

from kgfin.align.config import AlignConfig, ImpactRewardConfig, WarmStartConfig
from kgfin.align.events import AlignInputError, news_events
from kgfin.data.calendar import add_months, month_bounds
from kgfin.data.loaders import MarketData
from kgfin.graph.candidates import candidate_sets
from kgfin.graph.snapshot import GraphSnapshot
from kgfin.llm.grammar import AnswerGrammar, GrammarError, RowRule, company_labels
from kgfin.llm.parse import Universe
from kgfin.market.residuals import window_moves

__all__ = ["TargetBatch", "WarmStartConfig", "WarmStartTeacher", "choice_agreement", "rule_answers", "supervised_fit",
           "target_answers", "target_firms", "warm_start_events", "warm_start_targets"]

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
                   expected: Mapping[str, Mapping[str, float]] | None = None,
                   orders: Sequence[Sequence[str] | None] | None = None) -> list[list[tuple[str, int]]]:
    """Per event, the answer built from what happened: ``[(company label, score), ...]``, focal firm first (module
    docstring). ``resid``: long residuals (:func:`kgfin.market.residuals`); ``allowed``: per event, the company
    labels its answer may name (the candidates its prompt lists), None for any; ``expected``: per event id, the
    ripple firms' target moves (a teacher's, instead of the realised ones; a candidate it does not score is 0);
    ``orders``: per event, the labels its answer scores after the focal firm, in order (``decoding.score_listed``:
    every listed company, each at its target score, at least +-1 in the target's direction; ``firms`` is then
    unused), None for the largest ``firms``."""
    moves = window_moves(resid, impact.horizon)
    sets = candidate_sets(events, read_snapshot, impact.random_candidates, impact.candidate_seed)
    labels = company_labels(tickers, names)
    ticker_of = {label: t for t, label in labels.items()}
    out = []
    for row in events.itertuples(index=False):
        day, focal = pd.Timestamp(row.day), str(row.tickers[0])
        if day not in moves.index:
            raise AlignInputError(f"event {row.event_id}: no residual moves on {day.date()}")
        mv = moves.loc[day]
        f_move = float(mv.get(focal, np.nan))
        entries = [(labels[focal], _points(f_move if math.isfinite(f_move) else 0.0, impact.unit_of(focal=True),
                                           nonzero=True))]
        cand = sets[str(row.event_id)]
        ok = None if allowed is None else allowed[len(out)]
        if expected is None:
            target = {t: float(mv.get(t, np.nan)) for t in cand.tickers}
        else:
            if str(row.event_id) not in expected:
                raise AlignInputError(f"warm start: the teacher gave no moves for event {row.event_id}")
            target = {t: float(expected[str(row.event_id)].get(t, 0.0)) for t in cand.tickers}
        order = None if orders is None else orders[len(out)]
        if order is not None:  # every listed company, as the grammar writes them (a move it lacks counts as 0)
            for label in (lab for lab in order if lab != entries[0][0]):
                move = target.get(ticker_of[label], 0.0)
                entries.append((label, _points(move if math.isfinite(move) else 0.0, impact.score_unit, nonzero=True)))
        else:
            ripple = [t for t in cand.tickers if t not in cand.named and math.isfinite(target[t])
                      and (ok is None or labels[t] in ok)]
            scored = ((labels[t], _points(target[t], impact.score_unit))
                      for t in sorted(ripple, key=lambda t: (-abs(target[t]), t))[:firms])
            entries += [(label, s) for label, s in scored if s != 0]
        out.append(entries)
    return out


def _points(move: float, unit: float, nonzero: bool = False) -> int:
    """``move`` in score points of ``unit``, rounded and clipped to [-10, 10]; ``nonzero``: at least +-1 in its
    direction (a company the answer names moves)."""
    points = int(np.clip(np.round(move / unit), -10, 10))
    return (points or (1 if move >= 0 else -1)) if nonzero else points


def rule_answers(events: pd.DataFrame, read_snapshot: Callable[[str], GraphSnapshot], resid: pd.DataFrame,
                 universe: Universe, cfg: AlignConfig, rules: Sequence[Collection[str] | RowRule | None] | None,
                 expected: Mapping[str, Mapping[str, float]] | None = None) -> list[list[tuple[str, int]]]:
    """:func:`target_answers` under the grammar's per-event ``rules`` (:meth:`kgfin.align.decoding.Decoder.
    first_entries`: the names each answer may use and, with ``decoding.score_listed``, their order)."""
    allowed = [getattr(r, "names", None) for r in rules] if rules is not None else None
    orders = [getattr(r, "order", None) for r in rules] if rules is not None else None
    return target_answers(events, read_snapshot, resid, universe.tickers, universe.names, cfg.impact,
                          target_firms(cfg), allowed, expected, orders)


def target_firms(cfg: AlignConfig) -> int:
    """Ripple firms per target answer: ``warm_start.firms``, fewer where the grammar's ``max_companies`` (the news'
    company included) allows fewer."""
    ws = cfg.warm_start
    return min(ws.firms, cfg.decoding.max_companies - 1) if cfg.decoding.constrained else ws.firms


def warm_start_targets(events: pd.DataFrame, read_snapshot: Callable[[str], GraphSnapshot], resid: pd.DataFrame,
                       universe: Universe, cfg: AlignConfig, rules: Sequence[Collection[str] | RowRule | None] | None,
                       grammar: AnswerGrammar, tokenizer: Any, teacher: WarmStartTeacher | None = None
                       ) -> list[list[int]]:
    """Per event, the reply token ids of its target answer (:func:`target_answers`, the ``teacher``'s expected
    moves with ``warm_start.target: ridge_rule`` or ``gnn``), written in ``grammar``'s language; an answer too long
    for ``max_new_tokens`` loses its smallest ripple entries until it fits. ``rules``: per event, what its answer may
    name (:meth:`kgfin.align.decoding.Decoder.first_entries`)."""
    ws = cfg.warm_start
    expected = None
    if ws.target != "realised":
        if teacher is None:
            raise AlignInputError(f"warm_start.target={ws.target} needs its teacher (kgfin.evaluate.teacher; "
                                  "`kgfin align` builds it): pass align(..., warm_start_teacher=...)")
        expected = teacher(events, resid)
    ids = []
    for entries in rule_answers(events, read_snapshot, resid, universe, cfg, rules, expected):
        while True:
            try:
                ids.append(grammar.encode_answer(tokenizer, entries))
                break
            except GrammarError:
                if len(entries) == 1:
                    raise
                entries = entries[:-1]
    return ids


def supervised_fit(model: Any, tokenizer: Any, prompts: Sequence[str], answers: Sequence[Sequence[int]],
                   config: WarmStartConfig, progress: bool = False, grammar: AnswerGrammar | None = None,
                   rules: Sequence[Collection[str] | RowRule | None] | None = None) -> list[float]:
    """Fine-tune ``model``'s trainable parameters on (chat-formatted prompt, answer token ids) pairs; returns the loss
    of each gradient step. Gradients accumulate over micro-batches of ``config.micro_batch_size`` (the same step as
    one pass, in less memory).

    ``config.loss``: ``choices`` (default) minimises the mean negative log-probability of the answers' choices
    under ``grammar`` (its sampler's distribution; ``rules``: per prompt, its first-entry rule, as the sampler
    applied it), the same quantity PPO's log-probabilities are, so the forced JSON does not dilute the decisions;
    ``tokens`` the mean causal-LM cross-entropy over every answer token (no grammar needed)."""
    import torch
    from tqdm.auto import tqdm

    if len(prompts) != len(answers) or not prompts:
        raise AlignInputError(f"warm start needs one answer per prompt and at least one ({len(prompts)} prompts, "
                              f"{len(answers)} answers)")
    if config.loss == "choices" and grammar is None:
        raise AlignInputError("warm_start.loss=choices needs the answer grammar (constrained decoding); use "
                              "warm_start.loss=tokens without one")
    if rules is not None and len(rules) != len(prompts):
        raise AlignInputError(f"warm start: {len(rules)} first-entry rules for {len(prompts)} prompts")
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
                batch = [int(i) for i in order[lo:lo + config.batch_size]]
                parts = []
                for mlo in range(0, len(batch), config.micro_batch_size):
                    part = batch[mlo:mlo + config.micro_batch_size]
                    rows_grammar = None
                    if config.loss == "choices":
                        assert grammar is not None
                        rows_grammar = grammar.with_first_entries([rules[i] for i in part]) if rules else grammar
                    parts.append(TargetBatch([rows[i] for i in part], pad, device, rows_grammar))
                count = sum(p.count for p in parts)  # answer tokens, or choices
                opt.zero_grad()
                loss = 0.0
                for part in parts:
                    value = part.loss(model) / count
                    value.backward()
                    loss += float(value.detach())
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                losses.append(loss)
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    log.info("warm start: %d answers, %d steps, %s loss %.3f -> %.3f", len(rows), len(losses), config.loss,
             losses[0], losses[-1])
    return losses


def choice_agreement(model: Any, tokenizer: Any, prompts: Sequence[str], answers: Sequence[Sequence[int]],
                     grammar: AnswerGrammar, rules: Sequence[Collection[str] | RowRule | None] | None = None,
                     batch_size: int = 4) -> pd.DataFrame:
    """How closely ``model`` follows target answers where the grammar leaves it a choice (teacher forcing, no
    gradients): one row per choice with ``item`` (prompt index), ``entry`` (0 = the answer's first company),
    ``slot`` (:data:`~kgfin.llm.grammar.SLOT_NAME` / ``SLOT_TYPE`` / ``SLOT_SCORE``), ``digit`` (a score digit is
    among the tokens allowed there, not only the close or another entry), ``token`` (the target's), ``logp`` (the
    target token's log-probability under the constrained sampler) and ``hit`` (the target token is the most likely
    allowed one: what greedy decoding would pick given the answer so far)."""
    import torch

    rows = [(tokenizer(p, add_special_tokens=False)["input_ids"], list(a)) for p, a in zip(prompts, answers,
                                                                                         strict=True)]
    device = next(model.parameters()).device
    frames = []
    with torch.no_grad():
        for lo in range(0, len(rows), batch_size):
            g = grammar.with_first_entries(rules[lo:lo + batch_size]) if rules is not None else grammar
            batch = TargetBatch(rows[lo:lo + batch_size], tokenizer.pad_token_id, device, g)
            ch = batch.choices
            assert ch is not None
            logp = batch.choice_log_softmax(model)
            is_digit = torch.tensor([tokenizer.decode([t]).strip().isdigit() for t in ch.vocab.tolist()],
                                    device=ch.allowed.device)
            frames.append(pd.DataFrame({
                "item": (ch.rows + lo).tolist(), "entry": ch.entries.tolist(), "slot": ch.slots.tolist(),
                "digit": (ch.allowed & is_digit).any(1).tolist(), "token": ch.vocab[ch.taken].tolist(),
                "logp": logp.gather(-1, ch.taken[:, None]).squeeze(-1).tolist(),
                "hit": (logp.argmax(-1) == ch.taken).tolist()}))
    return pd.concat(frames, ignore_index=True)


class TargetBatch:
    """Teacher-forced (prompt ids, answer ids) rows: left-padded into one tensor, so every answer ends its row and
    the model's outputs are needed for the answer span only; with a grammar, its choices over the answer span
    (``choices``, :class:`~kgfin.llm.grammar.SamplerChoices`)."""

    def __init__(self, batch: Sequence[tuple[list[int], list[int]]], pad: int, device: Any,
                 grammar: AnswerGrammar | None = None):
        import torch

        width = max(len(p) + len(a) for p, a in batch)
        self.span = max(len(a) for _, a in batch)
        self.ids = torch.full((len(batch), width), pad, dtype=torch.long)
        self.labels = torch.full((len(batch), self.span), -100, dtype=torch.long)
        self.att = torch.zeros((len(batch), width), dtype=torch.long)
        for r, (p, a) in enumerate(batch):
            self.ids[r, width - len(p) - len(a):] = torch.tensor(p + a)
            self.att[r, width - len(p) - len(a):] = 1
            self.labels[r, self.span - len(a):] = torch.tensor(a)
        self.ids, self.att, self.labels = self.ids.to(device), self.att.to(device), self.labels.to(device)
        self.choices = None
        if grammar is not None:
            reply = self.labels.clamp(min=0)
            self.choices = grammar.sampler_choices(reply, self.labels >= 0)
        self.count = len(self.choices.rows) if self.choices is not None else int((self.labels >= 0).sum())

    def _outputs(self, model: Any) -> Any:
        pos = (self.att.cumsum(1) - 1).clamp(min=0)
        return model(input_ids=self.ids, attention_mask=self.att, position_ids=pos, logits_to_keep=self.span + 1,
                     output_hidden_states=self.choices is not None)

    def choice_log_softmax(self, model: Any) -> Any:
        """(N, U) log-probabilities over the tokens allowed at each choice (:meth:`SamplerChoices.log_softmax`);
        position i's hidden state predicts token i + 1, so the answer span's are the ``span`` before the last."""
        if self.choices is None:
            raise AlignInputError("choice log-probabilities need the answer grammar")
        hidden = self._outputs(model).hidden_states[-1][:, -self.span - 1:-1]
        return self.choices.log_softmax(hidden, model.get_output_embeddings())

    def loss(self, model: Any) -> Any:
        """Summed negative log-likelihood of the answers' choices (with a grammar) or of their tokens."""
        import torch

        if self.choices is not None:
            return -self.choice_log_softmax(model).gather(-1, self.choices.taken[:, None]).sum()
        logits = self._outputs(model).logits[:, :-1].float()
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), self.labels.reshape(-1),
                                                 ignore_index=-100, reduction="sum")
