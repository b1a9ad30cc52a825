"""Market alignment over months (FinRipple algorithm 1) with kgfin's PPO (or TRL's GRPO / RLOO).

For each training month m, in order:

1. load the base model and merge the knowledge adapter of the graph month
   ``g = m - graph_lag_months`` into its weights (frozen): this is the **reference**, the
   policy before alignment;
2. the **policy** is that model plus what alignment has learned so far: an alignment LoRA
   (``train: lora``, reference = the policy with the LoRA switched off) or a delta on every
   weight (``train: backbone``, reference = a separate frozen copy), carried from month to
   month together with the optimiser and value head;
3. for each batch of month m's news: sample answers, score them with
   :class:`~kgfin.align.impact_reward.ImpactReward` (parse -> propagate over mu_g -> cos +
   lam * coverage against the event day's residual returns) and take one PPO step
   (``algo: grpo | rloo``: one step of TRL's trainer on the batch, ``num_generations``
   answers per news item, see :mod:`kgfin.align.trl_algos`).

Writes ``OUT/align_log.csv`` (one row per PPO step), checkpoints in ``OUT/checkpoint/``
(resumed automatically), and the result in ``OUT/final/``: ``align-adapter/`` (a PEFT
folder to stack on a month's merged knowledge adapter) or ``backbone-delta.safetensors``.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kgfin.align.config import AlignConfig
from kgfin.align.events import AlignInputError, news_events
from kgfin.align.impact_reward import ImpactReward, build_impact_reward
from kgfin.data.loaders import MarketData
from kgfin.graph.snapshot import GraphSnapshot
from kgfin.inject.trainer import adapter_dir
from kgfin.llm.prompts import SYSTEM_PROMPT, analyst_prompt
from kgfin.runinfo import write_manifest

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["LOG_NAME", "AlignResult", "align", "event_messages", "initial_alignment", "knowledge_model", "reward_trend"]

LOG_NAME = "align_log.csv"
LOG_COLUMNS = [
    "step", "month", "graph_month", "epoch", "events", "reward", "cos", "coverage", "refusal_rate", "named",
    "kl", "response_length", "truncated", "pg_loss", "vf_loss", "clipfrac", "approx_kl", "seconds",
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


def event_messages(events: pd.DataFrame) -> list[str]:
    """The analyst prompt (user message) of each event."""
    return [analyst_prompt(h, b, pd.Timestamp(t).strftime("%Y-%m-%d"))
            for h, b, t in zip(events["headline"], events["body"], events["timestamp"], strict=True)]


def knowledge_model(cfg: AlignConfig, adapters_root: str | Path, graph_month: str
                    ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base model with ``graph_month``'s knowledge adapter merged in, frozen (the base alone if not ``knowledge``),
    on ``cfg.device``."""
    import torch
    from peft import PeftModel

    from kgfin.llm.models import load_causal_lm, pick_device

    torch.manual_seed(cfg.seed)
    model, tok = load_causal_lm(cfg.model, seed=cfg.seed)
    if cfg.knowledge:
        path = adapter_dir(adapters_root, graph_month)
        if not (path / "adapter_config.json").exists():
            raise AlignInputError(
                f"no knowledge adapter for graph month {graph_month} at {path}: train it with "
                f"`kgfin inject --month {graph_month}`, or run with --set knowledge=false")
        model = PeftModel.from_pretrained(model, path).merge_and_unload()
    model.to(pick_device(cfg.device))
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    return model, tok


class _MonthPolicy:
    """Policy and reference of one month (and its PPO trainer), built from the carried alignment state."""

    def __init__(self, cfg: AlignConfig, adapters_root: Path, graph_month: str, reward: ImpactReward,
                 learned: dict[str, Any] | None, trainer_state: dict[str, Any] | None,
                 calibration: pd.DataFrame | None = None):
        import torch
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

        from kgfin.inject.adapters import adapters_disabled

        self.cfg = cfg
        reference, self.tok = knowledge_model(cfg, adapters_root, graph_month)
        if cfg.train == "lora":
            torch.manual_seed(cfg.seed)
            lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                              target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
            self.policy = get_peft_model(reference, lora)
            if learned is not None:
                set_peft_model_state_dict(self.policy, learned)
            self.reference = None
            context = {"reference_context": lambda: adapters_disabled(self.policy)}
        else:
            self.reference = reference
            self.policy = copy.deepcopy(reference)
            with torch.no_grad():
                for name, p in self.policy.named_parameters():
                    if learned is not None:
                        p.add_(learned[name].to(p.device))
                    p.requires_grad_(True)
            context = {"reference_model": reference}
        self.trainer: Any = None
        self.optimizer: Any = None  # grpo / rloo: one AdamW carried over steps and months (kgfin.align.trl_algos)
        self.optimizer_state = trainer_state.get("optimizer") if trainer_state and cfg.algo != "ppo" else None
        if cfg.algo == "ppo":
            from kgfin.align.ppo import PPOTrainer

            grammar = cfg.answer_grammar(self.tok, reward.universe, cfg.ppo.max_new_tokens)
            if grammar is not None and calibration is not None:
                from kgfin.align.calibration import calibrated_grammar

                grammar = calibrated_grammar(grammar, self.policy, self.tok, reward.universe, calibration,
                                             event_messages(calibration), system=SYSTEM_PROMPT,
                                             prefix=cfg.answer_prefix, what=f" (graph month {graph_month})")
            self.trainer = PPOTrainer(self.policy, self.tok, reward, cfg.ppo, answer_prefix=cfg.answer_prefix,
                                      grammar=grammar, **context)
            if trainer_state is not None:
                self.trainer.load_state_dict(trainer_state)

    def trainer_state(self) -> dict[str, Any] | None:
        """Optimiser (and for PPO value head, step count, sampling RNG) to carry over."""
        if self.trainer is not None:
            return self.trainer.state_dict()
        if self.optimizer is not None:
            return {"optimizer": self.optimizer.state_dict()}
        return {"optimizer": self.optimizer_state} if self.optimizer_state is not None else None

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
    per_item = cfg.ppo.samples_per_prompt if cfg.algo == "ppo" else cfg.num_generations
    size = cfg.ppo.batch_size // per_item  # news per step
    for month, part in events.groupby("month", sort=True):
        rows = part.index.to_numpy()
        for epoch in range(cfg.epochs):
            order = rows if epoch == 0 else np.random.default_rng([cfg.seed, epoch]).permutation(rows)
            steps += [(str(month), epoch, order[lo:lo + size]) for lo in range(0, len(order), size)]
    return steps


def _save_checkpoint(work: Path, step: int, policy: _MonthPolicy) -> None:
    import torch

    tmp = work.with_name(work.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save({"learned": policy.learned(), "trainer": policy.trainer_state()}, tmp / "state.pt")
    (tmp / "progress.json").write_text(json.dumps({"step": step}))
    shutil.rmtree(work, ignore_errors=True)
    tmp.rename(work)


def _load_checkpoint(work: Path) -> tuple[int, dict[str, Any] | None, dict[str, Any] | None]:
    import torch

    if not (work / "progress.json").exists():
        return 0, None, None
    state = torch.load(work / "state.pt", weights_only=False, map_location="cpu")  # moved to the model's device later
    return int(json.loads((work / "progress.json").read_text())["step"]), state["learned"], state["trainer"]


def initial_alignment(cfg: AlignConfig, final: str | Path) -> dict[str, Any]:
    """What an earlier run's ``final/`` folder learned, in the form :class:`_MonthPolicy` carries
    (``cfg.init_from``)."""
    from safetensors.torch import load_file

    final = Path(final)
    if cfg.train == "lora":
        path = final / "align-adapter"
        if not (path / "adapter_config.json").exists():
            raise AlignInputError(f"init_from: {path} holds no alignment LoRA (was that run trained with train=lora?)")
        saved = json.loads((path / "adapter_config.json").read_text())
        if (saved.get("r"), saved.get("lora_alpha")) != (cfg.lora.r, cfg.lora.alpha):
            raise AlignInputError(f"init_from: {path} has LoRA r={saved.get('r')}, alpha={saved.get('lora_alpha')}; "
                                  f"this recipe has r={cfg.lora.r}, alpha={cfg.lora.alpha}")
        return dict(load_file(str(path / "adapter_model.safetensors")))
    path = final / "backbone-delta.safetensors"
    if not path.exists():
        raise AlignInputError(f"init_from: {path} not found (was that run trained with train=backbone?)")
    return dict(load_file(str(path)))


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
) -> AlignResult:
    """Align on the news of ``months`` (in order); see the module docstring.

    ``max_steps`` stops early (the run can be resumed later); ``resume=False`` starts over.
    """
    from kgfin.llm.generate import chat_prompts

    out_dir, adapters_root = Path(out_dir), Path(adapters_root)
    events = news_events(market, sorted(months), cfg.events)
    reward, events = build_impact_reward(events, market, read_snapshot, cfg.impact, prefix=cfg.answer_prefix)
    plan = _plan(events, cfg)
    first_entries = cfg.first_entries(events, reward.universe)  # per event row, as messages
    work = out_dir / "checkpoint"
    if not resume:
        shutil.rmtree(work, ignore_errors=True)
        (out_dir / LOG_NAME).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    done, learned, trainer_state = _load_checkpoint(work)
    if done == 0 and cfg.init_from:
        learned = initial_alignment(cfg, cfg.init_from)
    rows = _log_rows(out_dir / LOG_NAME, done)
    write_manifest(out_dir, command, cfg, extra={"months": sorted(months), "events": len(events), "steps": len(plan),
                                                  "adapters": str(adapters_root)})
    messages = event_messages(events)
    calibration = None
    if cfg.calibrate_impact_type:
        from kgfin.align.calibration import calibration_events

        calibration = calibration_events(market, sorted(months), cfg.events, cfg.calibration_events)
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
                    learned, trainer_state = policy.learned(), policy.trainer_state()
                policy = _MonthPolicy(cfg, adapters_root, graph_month, reward, learned, trainer_state,
                                      None if calibration is None else calibration[calibration["calibrates"] == month])
                current = month
            assert policy is not None
            ids = events.loc[batch, "event_id"].astype(str).tolist()
            if cfg.algo == "ppo":
                prompts = chat_prompts(policy.tok, [messages[i] for i in batch], system=SYSTEM_PROMPT,
                                       prefix=cfg.answer_prefix)
                start = time.perf_counter()
                stats = policy.trainer.step(prompts, first_entries=None if first_entries is None else
                                            [first_entries[i] for i in batch], event_id=ids)
                seconds = time.perf_counter() - start
                scored = reward.last
            else:
                from kgfin.align.trl_algos import trl_step

                stats, scored, seconds = trl_step(policy, reward, [messages[i] for i in batch], ids, cfg,
                                                  out_dir / "trl", step)
            row = {
                "step": step + 1, "month": month, "graph_month": graph_month, "epoch": epoch, "events": len(batch),
                "reward": stats["score"], "cos": float(np.mean([s.cos for s in scored])),
                "coverage": float(np.mean([s.coverage for s in scored])),
                "refusal_rate": float(np.mean([s.refused for s in scored])),
                "named": float(np.mean([len(s.impacts.scores) for s in scored])),
                "seconds": seconds, "tokens_per_second": stats["response_length"] * len(scored) / seconds,
                **{k: stats[k] for k in ("kl", "response_length", "truncated", "pg_loss", "vf_loss", "clipfrac",
                                         "approx_kl")},
            }
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
            log_file.flush()
            bar.update(1)
            bar.set_postfix(month=month, reward=f"{row['reward']:.3f}", refusals=f"{row['refusal_rate']:.2f}")
            if (cfg.save_steps and (step + 1) % cfg.save_steps == 0) or step + 1 == stop:
                _save_checkpoint(work, step + 1, policy)
    bar.close()
    final = out_dir / "final"
    if stop == len(plan) and policy is not None:
        tmp = out_dir / ".final.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        policy.save_final(tmp)
        write_manifest(tmp, command, cfg, extra={"months": sorted(months), "steps": len(plan), "train": cfg.train,
                                                  "knowledge": cfg.knowledge,
                                                  "graph_lag_months": cfg.events.graph_lag_months})
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    log = pd.read_csv(out_dir / LOG_NAME)
    return AlignResult(out_dir, len(log), sorted(months), log, final)


def reward_trend(log: pd.DataFrame, window: int | None = None) -> tuple[float, float]:
    """Mean reward of the first and last ``window`` steps (default: a quarter of the run, at least 1)."""
    w = window or max(1, math.ceil(len(log) / 4))
    return float(log["reward"].head(w).mean()), float(log["reward"].tail(w).mean())
