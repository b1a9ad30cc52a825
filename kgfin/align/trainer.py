"""Market alignment over months (FinRipple algorithm 1) with kgfin's PPO (or TRL's GRPO / RLOO).

For each training month m, in order:

1. load the base model and merge the knowledge adapter of the graph month
   ``g = m - graph_lag_months`` into its weights (frozen): this is the **reference**, the
   policy before alignment;
2. the **policy** is that model plus what alignment has learned so far: an alignment LoRA
   (``train: lora``, reference = the policy with the LoRA switched off) or a delta on every
   weight (``train: backbone``, reference = a separate frozen copy), carried from month to
   month together with the optimiser and value head;
3. for each batch of month m's news: one step of the alignment algorithm
   (:mod:`kgfin.align.algorithms`: PPO, or TRL's GRPO / RLOO with ``num_generations`` answers
   per news item) samples answers, decoded as the :class:`~kgfin.align.decoding.Decoder` says,
   scores them with :class:`~kgfin.align.impact_reward.ImpactReward` (parse -> propagate over
   mu_g -> cos + lam * coverage against the event day's residual returns) and updates the policy.

With ``warm_start.enabled`` the alignment first learns, by supervised fine-tuning, to answer earlier
news items as they turned out (:mod:`kgfin.align.warm_start`; written to ``OUT/warm_start/``, a
``final/``-like folder) and PPO starts from there.

Writes ``OUT/align_log.csv`` (one row per PPO step), checkpoints in ``OUT/checkpoint/``
(resumed automatically) with the alignment so far in ``OUT/latest/`` (evaluate a partial run with it), and the
result in ``OUT/final/``: ``align-adapter/`` (a PEFT
folder to stack on a month's merged knowledge adapter) or ``backbone-delta.safetensors``.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import shutil
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kgfin.align.algorithms import STAT_KEYS, AlignmentAlgorithm, PPOAlgorithm
from kgfin.align.config import AlignConfig
from kgfin.align.decoding import Decoder
from kgfin.align.events import AlignInputError, news_events
from kgfin.align.impact_reward import ImpactReward, build_impact_reward
from kgfin.align.models import knowledge_model, learned_alignment
from kgfin.align.warm_start import (
    WarmStartTeacher,
    supervised_fit,
    target_firms,
    warm_start_events,
    warm_start_targets,
)
from kgfin.data.loaders import MarketData
from kgfin.graph.snapshot import GraphSnapshot
from kgfin.llm.parse import SCORE_LIMIT
from kgfin.market.residuals import residuals
from kgfin.runinfo import write_manifest

__all__ = ["LATEST_NAME", "LOG_NAME", "WARM_START_NAME", "AlignResult", "align", "make_algorithm", "reward_trend", "saturated_share"]

LOG_NAME = "align_log.csv"
WARM_START_NAME = "warm_start"  # OUT/warm_start: the supervised warm start's alignment folder
LATEST_NAME = "latest"  # OUT/latest: the alignment at the last checkpoint, a final/-like folder
LOG_COLUMNS = [
    "step", "month", "graph_month", "epoch", "events", "reward", "cos", "coverage", "mse", "ic", "refusal_rate",
    "named", "saturated", "kl", "response_length", "truncated", "pg_loss", "vf_loss", "clipfrac", "approx_kl", "seconds",
    "tokens_per_second",
]


@dataclass
class AlignResult:
    """What an alignment run did."""

    out_dir: Path
    steps: int
    months: list[str]
    log: pd.DataFrame
    final: Path


class _MonthPolicy:
    """Policy and reference of one month, and its alignment algorithm, built from the carried alignment state."""

    def __init__(self, cfg: AlignConfig, adapters_root: Path, graph_month: str, reward: ImpactReward,
                 decoder: Decoder, learned: dict[str, Any] | None, algorithm_state: dict[str, Any] | None,
                 work_dir: Path, read_snapshot: Callable[[str], GraphSnapshot],
                 reference_learned: dict[str, Any] | None = None):
        """``reference_learned``: alignment weights the KL reference carries (the warm start's, so that PPO is held
        near the policy it starts from, as RLHF holds it near its SFT model); None: the knowledge model alone."""
        import torch
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

        from kgfin.inject.adapters import adapters_disabled, lora_weights

        reference, self.tok = knowledge_model(cfg, adapters_root, graph_month)
        if cfg.train == "lora":
            torch.manual_seed(cfg.seed)
            lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                              target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
            self.policy = get_peft_model(reference, lora)
            if learned is not None:
                set_peft_model_state_dict(self.policy, learned)
            self.reference = None
            references: dict[str, Any] = {"reference_context": (
                (lambda: adapters_disabled(self.policy)) if reference_learned is None else
                (lambda: lora_weights(self.policy, reference_learned)))}
        else:
            self.reference = reference
            self.policy = copy.deepcopy(reference)
            with torch.no_grad():
                for name, p in self.policy.named_parameters():
                    if learned is not None:
                        p.add_(learned[name].to(p.device))
                    p.requires_grad_(True)
            if reference_learned is not None:
                reference = copy.deepcopy(reference)
                with torch.no_grad():
                    for name, p in reference.named_parameters():
                        p.add_(reference_learned[name].to(p.device))
            references = {"reference_model": reference}
        self.grammar = decoder.grammar(self.policy, self.tok, graph_month, cfg.ppo.max_new_tokens,
                                       lambda ev: decoder.messages(ev, read_snapshot))
        self.algorithm = make_algorithm(cfg, self.policy, self.tok, reward, decoder, grammar=self.grammar,
                                        state=algorithm_state, work_dir=work_dir, **references)

    def learned(self) -> dict[str, Any]:
        """What alignment has learned: the LoRA weights, or each weight's change from the reference."""
        from peft import get_peft_model_state_dict

        if self.reference is None:
            return {k: v.detach().clone() for k, v in get_peft_model_state_dict(self.policy).items()}
        ref = dict(self.reference.named_parameters())
        return {n: (p.detach() - ref[n].detach()).clone() for n, p in self.policy.named_parameters()}

    def save_final(self, target: Path) -> None:
        from safetensors.torch import save_file

        target.mkdir(parents=True, exist_ok=True)
        if self.reference is None:
            self.policy.save_pretrained(target / "align-adapter")
        else:
            save_file({k: v.contiguous() for k, v in self.learned().items()}, str(target / "backbone-delta.safetensors"))


def _plan(events: pd.DataFrame, cfg: AlignConfig) -> list[tuple[str, int, np.ndarray]]:
    """(month, epoch, event rows) of every PPO step, in order."""
    steps = []
    per_item = cfg.experimental.samples_per_prompt if cfg.algo == "ppo" else cfg.num_generations
    size = cfg.ppo.batch_size // per_item  # news per step
    for month, part in events.groupby("month", sort=True):
        rows = part.index.to_numpy()
        for epoch in range(cfg.epochs):
            order = rows if epoch == 0 else np.random.default_rng([cfg.seed, epoch]).permutation(rows)
            steps += [(str(month), epoch, order[lo:lo + size]) for lo in range(0, len(order), size)]
    return steps


def make_algorithm(cfg: AlignConfig, policy: Any, tokenizer: Any, reward: ImpactReward, decoder: Decoder, *,
                   grammar: Any = None, reference_model: Any = None,
                   reference_context: Callable[[], AbstractContextManager[Any]] | None = None,
                   state: dict[str, Any] | None = None, work_dir: Path | None = None) -> AlignmentAlgorithm:
    """The algorithm ``cfg.algo`` names, on ``policy`` (``state``: what an earlier month or checkpoint carried;
    ``work_dir``: TRL's output folder)."""
    if cfg.algo == "ppo":
        return PPOAlgorithm(policy, tokenizer, reward, cfg, decoder, grammar=grammar, reference_model=reference_model,
                            reference_context=reference_context, state=state)
    from kgfin.align.trl_algos import TRLAlgorithm

    return TRLAlgorithm(policy, tokenizer, reward, cfg, decoder, work_dir=work_dir or Path("trl"), state=state)


def _save_checkpoint(work: Path, step: int, policy: _MonthPolicy) -> None:
    import torch

    tmp = work.with_name(work.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save({"learned": policy.learned(), "trainer": policy.algorithm.state_dict()}, tmp / "state.pt")
    (tmp / "progress.json").write_text(json.dumps({"step": step}))
    shutil.rmtree(work, ignore_errors=True)
    tmp.rename(work)


def _load_checkpoint(work: Path) -> tuple[int, dict[str, Any] | None, dict[str, Any] | None]:
    import torch

    if not (work / "progress.json").exists():
        return 0, None, None
    state = torch.load(work / "state.pt", weights_only=False, map_location="cpu")  # moved to the model's device later
    return int(json.loads((work / "progress.json").read_text())["step"]), state["learned"], state["trainer"]


def _warm_start(cfg: AlignConfig, market: MarketData, read_snapshot: Callable[[str], GraphSnapshot],
                reward: ImpactReward, decoder: Decoder, adapters_root: Path, first_month: str, graph_month: str,
                resid: pd.DataFrame, target: Path, progress: bool, command: str,
                teacher: WarmStartTeacher | None = None) -> None:
    """Fit the alignment LoRA of ``first_month``'s policy on past events' target answers (realised moves, or the
    ``teacher``'s expected ones with ``warm_start.target: ridge_rule``); write it to ``target`` (a ``final/``-like
    folder with ``warm_start_log.csv``)."""
    from kgfin.llm.generate import chat_prompts
    from kgfin.llm.grammar import AnswerGrammar
    from kgfin.llm.prompts import SYSTEM_PROMPT

    ws = cfg.warm_start
    days = pd.DatetimeIndex(sorted(resid["date"].unique()))
    events = warm_start_events(market, first_month, ws, cfg.events, days, cfg.impact.horizon)
    if events.empty:
        raise AlignInputError(f"warm start: no news item before {first_month} whose outcome window ends before it "
                              f"(warm_start.months={ws.months})")
    rules = decoder.first_entries(events, read_snapshot)
    policy = _MonthPolicy(cfg, adapters_root, graph_month, reward, decoder, None, None, target.parent / "trl",
                          read_snapshot)
    grammar = policy.grammar or AnswerGrammar.for_universe(  # unconstrained: the grammar only writes the targets
        policy.tok, reward.universe.tickers, reward.universe.names, max_companies=target_firms(cfg) + 1,
        max_new_tokens=cfg.ppo.max_new_tokens)
    ids = warm_start_targets(events, read_snapshot, resid, reward.universe, cfg, rules, grammar, policy.tok, teacher)
    prompts = chat_prompts(policy.tok, decoder.messages(events, read_snapshot), system=SYSTEM_PROMPT,
                           prefix=decoder.prefix)
    losses = supervised_fit(policy.policy, policy.tok, prompts, ids, ws, progress=progress, grammar=policy.grammar,
                            rules=rules)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    policy.save_final(tmp)
    pd.DataFrame({"step": range(1, len(losses) + 1), "loss": losses}).to_csv(tmp / "warm_start_log.csv", index=False)
    write_manifest(tmp, command, cfg, extra={"warm_start_events": len(events), "first_month": first_month,
                                              "target": ws.target,
                                              "months": sorted(set(events["month"])), "steps": len(losses),
                                              "loss": ws.loss,
                                              "mean_answer_tokens": float(np.mean([len(a) for a in ids]))})
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def _nanmean(values: Sequence[float]) -> float:
    """Mean over the finite values (NaN when there is none: a reward without candidate terms)."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def saturated_share(scored: Sequence[Any]) -> float:
    """Share of the scores named in ``scored``'s answers that sit at the scale's end (+-10); NaN if none named."""
    scores = [abs(v) for s in scored for v in s.impacts.scores.values()]
    return float(np.mean([v >= SCORE_LIMIT for v in scores])) if scores else math.nan


def _save_result(target: Path, policy: _MonthPolicy, command: str, cfg: AlignConfig, months: Sequence[str],
                 steps: int, planned: int) -> None:
    """Write the policy's alignment to ``target`` (``final/``, or ``latest/`` at every checkpoint: a partial run
    can be evaluated like a finished one), replacing it whole."""
    tmp = target.with_name("." + target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    policy.save_final(tmp)
    write_manifest(tmp, command, cfg, extra={"months": sorted(months), "steps": steps, "planned_steps": planned,
                                              "train": cfg.train, "knowledge": cfg.knowledge,
                                              "graph_lag_months": cfg.events.graph_lag_months})
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def _log_rows(path: Path, keep_steps: int) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open() as f:
        return [r for r in csv.DictReader(f) if int(r["step"]) <= keep_steps]


def align(
    cfg: AlignConfig,
    market: MarketData,
    read_snapshot: Callable[[str], GraphSnapshot],
    months: Sequence[str],
    out_dir: str | Path,
    adapters_root: str | Path = "adapters",
    *,
    resume: bool = True,
    max_steps: int | None = None,
    progress: bool = True,
    command: str = "kgfin align",
    warm_start_teacher: WarmStartTeacher | None = None,
) -> AlignResult:
    """Align on the news of ``months`` (in order); see the module docstring.

    ``max_steps`` stops early (the run can be resumed later; 0: the warm start alone); ``resume=False`` starts
    over; ``warm_start_teacher``: the expected moves of ``warm_start.target: ridge_rule`` or ``gnn``
    (:func:`kgfin.evaluate.teacher.row_teacher`).
    """
    out_dir, adapters_root = Path(out_dir), Path(adapters_root)
    events = news_events(market, sorted(months), cfg.events)
    if market.returns is None or market.factors_daily is None:
        raise AlignInputError("the reward needs the returns and daily factors tables")
    resid = residuals(market.returns, market.factors_daily, cfg.impact.residuals)  # fitted once: reward, warm start
    reward, events = build_impact_reward(events, market, read_snapshot, cfg.impact, prefix=cfg.decoding.answer_prefix,
                                         resid=resid)
    decoder = Decoder.for_months(cfg.decoding, reward.universe, market, months, cfg.events)
    plan = _plan(events, cfg)
    first_entries = decoder.first_entries(events, read_snapshot)  # per event row, as messages
    work = out_dir / "checkpoint"
    if not resume:
        shutil.rmtree(work, ignore_errors=True)
        (out_dir / LOG_NAME).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    done, learned, algorithm_state = _load_checkpoint(work)
    reference_learned = None  # the warm start's weights: PPO's KL reference (also on resume)
    if done == 0 and cfg.experimental.init_from:
        learned = learned_alignment(cfg, cfg.experimental.init_from)
    elif cfg.warm_start.enabled and plan and not cfg.experimental.init_from:
        ws_dir = out_dir / WARM_START_NAME
        if done == 0 and not (ws_dir / "kgfin-run.json").exists():
            _warm_start(cfg, market, read_snapshot, reward, decoder, adapters_root, plan[0][0],
                        str(events.loc[plan[0][2][0], "graph_month"]), resid, ws_dir, progress, command,
                        warm_start_teacher)
        reference_learned = learned_alignment(cfg, ws_dir)
        if done == 0:
            learned = reference_learned  # copied into the policy's weights, never changed in place
    rows = _log_rows(out_dir / LOG_NAME, done)
    write_manifest(out_dir, command, cfg, extra={"months": sorted(months), "events": len(events), "steps": len(plan),
                                                  "adapters": str(adapters_root)})
    messages = decoder.messages(events, read_snapshot)
    stop = len(plan) if max_steps is None else min(len(plan), done + max_steps)
    policy: _MonthPolicy | None = None
    current = None
    bar = tqdm(total=len(plan), initial=done, desc="PPO steps", unit="step", disable=not progress)
    with (out_dir / LOG_NAME).open("w", newline="") as log_file:
        writer = csv.DictWriter(log_file, fieldnames=LOG_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        log_file.flush()
        for step in range(done, stop):
            month, epoch, batch = plan[step]
            graph_month = str(events.loc[batch[0], "graph_month"])
            if month != current:
                if policy is not None:
                    learned, algorithm_state = policy.learned(), policy.algorithm.state_dict()
                policy = _MonthPolicy(cfg, adapters_root, graph_month, reward, decoder, learned, algorithm_state,
                                      out_dir / "trl", read_snapshot, reference_learned)
                current = month
            assert policy is not None
            ids = events.loc[batch, "event_id"].astype(str).tolist()
            result = policy.algorithm.step([messages[i] for i in batch], ids,
                                           None if first_entries is None else [first_entries[i] for i in batch])
            stats, scored, seconds = result.stats, result.scored, result.seconds
            row = {
                "step": step + 1, "month": month, "graph_month": graph_month, "epoch": epoch, "events": len(batch),
                "reward": stats["score"], "cos": float(np.mean([s.cos for s in scored])),
                "coverage": float(np.mean([s.coverage for s in scored])),
                "mse": _nanmean([s.mse for s in scored]), "ic": _nanmean([s.ic for s in scored]),
                "refusal_rate": float(np.mean([s.refused for s in scored])),
                "named": float(np.mean([len(s.impacts.scores) for s in scored])),
                "saturated": saturated_share(scored),
                "seconds": seconds, "tokens_per_second": stats["response_length"] * len(scored) / seconds,
                **{k: stats[k] for k in STAT_KEYS if k != "score"},
            }
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
            log_file.flush()
            bar.update(1)
            bar.set_postfix(month=month, reward=f"{row['reward']:.3f}", refusals=f"{row['refusal_rate']:.2f}")
            if (cfg.save_steps and (step + 1) % cfg.save_steps == 0) or step + 1 == stop:
                _save_checkpoint(work, step + 1, policy)
                _save_result(out_dir / LATEST_NAME, policy, command, cfg, months, step + 1, len(plan))
    bar.close()
    final = out_dir / "final"
    if stop == len(plan) and policy is not None:
        _save_result(final, policy, command, cfg, months, len(plan), len(plan))
    log = pd.read_csv(out_dir / LOG_NAME)
    return AlignResult(out_dir, len(log), sorted(months), log, final)


def reward_trend(log: pd.DataFrame, window: int | None = None) -> tuple[float, float]:
    """Mean reward of the first and last ``window`` steps (default: a quarter of the run, at least 1)."""
    w = window or max(1, math.ceil(len(log) / 4))
    return float(log["reward"].head(w).mean()), float(log["reward"].tail(w).mean())
