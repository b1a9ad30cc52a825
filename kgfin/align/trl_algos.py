"""GRPO and RLOO alignment steps through TRL, with kgfin's market reward.

``kgfin align --set algo=grpo`` (or ``rloo``) runs the same month loop as PPO
(:mod:`kgfin.align.trainer`), but each step is one optimiser step of TRL's
``GRPOTrainer`` / ``RLOOTrainer`` on the batch's news: ``num_generations`` answers per item,
each scored by :meth:`~kgfin.align.impact_reward.ImpactReward.score_batch`, advantages relative
to the item's group (no value head), KL to the reference with coefficient ``ppo.kl_coef``. The
policy is the month's PEFT model (alignment LoRA on the merged knowledge adapter), so TRL's
reference is that model with the LoRA switched off, exactly as for PPO. One AdamW optimiser
is carried over steps and months (:meth:`TRLAlgorithm.state_dict`), so its moments persist as in PPO.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgfin.align.algorithms import StepResult
from kgfin.align.config import AlignConfig
from kgfin.align.decoding import Decoder
from kgfin.align.impact_reward import ImpactReward, ScoredAnswer
from kgfin.llm.prompts import SYSTEM_PROMPT

__all__ = ["TRLAlgorithm"]


def _keep_knowledge_reference(model: Any) -> None:
    """Drop the "ref" adapter TRL copies from a pre-wrapped PEFT model.

    TRL takes a copy of the current alignment LoRA as the reference when it is given a PEFT
    model; that would anchor the KL at the policy of the step's start. Without the copy TRL
    computes the reference with adapters disabled: the merged knowledge model, the policy
    before alignment, as in kgfin's PPO.
    """
    if "ref" in getattr(model, "peft_config", {}):
        flags = {n: p.requires_grad for n, p in model.named_parameters() if ".ref." not in n}
        model.delete_adapter("ref")
        model.set_adapter("default")
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])


class TRLAlgorithm:
    """GRPO / RLOO (``cfg.algo``) steps on ``policy``, a PEFT model whose disabled adapters are the reference."""

    def __init__(self, policy: Any, tokenizer: Any, reward: ImpactReward, cfg: AlignConfig, decoder: Decoder, *,
                 work_dir: Path, state: dict[str, Any] | None = None):
        import torch

        self.policy, self.tok, self.reward, self.cfg, self.prefix = policy, tokenizer, reward, cfg, decoder.prefix
        self.work_dir = Path(work_dir)
        self.optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad],
                                           lr=cfg.ppo.learning_rate)
        self.steps_done = 0
        if state is not None:
            self.optimizer.load_state_dict(state["optimizer"])
            self.steps_done = int(state.get("steps_done", 0))

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "steps_done": self.steps_done}

    def step(self, messages: Sequence[str], event_ids: Sequence[str],
             first_entries: Sequence[Collection[str] | None] | None) -> StepResult:
        """One GRPO / RLOO optimiser step on ``messages`` (TRL samples without a grammar: no first entries)."""
        import torch
        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

        if first_entries is not None:
            raise ValueError(f"first entries need constrained decoding, which {self.cfg.algo} does not have")
        cfg, g = self.cfg, self.cfg.num_generations
        prefill = [{"role": "assistant", "content": self.prefix}] if self.prefix else []
        dataset = Dataset.from_dict({
            "prompt": [[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": m}, *prefill]
                       for m in messages],
            "event_id": list(event_ids),
        })
        common = dict(
            output_dir=str(self.work_dir), use_cpu=not torch.cuda.is_available(), bf16=False, report_to=[],
            save_strategy="no", logging_steps=1, disable_tqdm=True, max_steps=1,
            per_device_train_batch_size=len(messages) * g, num_generations=g, steps_per_generation=1,
            num_iterations=1, beta=cfg.ppo.kl_coef, max_completion_length=cfg.ppo.max_new_tokens,
            temperature=cfg.ppo.temperature, top_p=cfg.ppo.top_p, learning_rate=cfg.ppo.learning_rate,
            lr_scheduler_type="constant", warmup_steps=0, max_grad_norm=cfg.ppo.max_grad_norm, shuffle_dataset=False,
            seed=cfg.ppo.seed + self.steps_done, data_seed=cfg.ppo.seed, dataloader_num_workers=0,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda _: 1.0)
        args: Any = GRPOConfig(**common) if cfg.algo == "grpo" else RLOOConfig(**common)
        trainer_cls: Any = GRPOTrainer if cfg.algo == "grpo" else RLOOTrainer
        scored: list[ScoredAnswer] = []  # the answers of this step's (one) generation batch
        scope = cfg.experimental.reward_scope

        def market_reward(prompts: list[Any], completions: list[Any], event_id: list[str], **_: Any) -> list[float]:
            scored[:] = self.reward.score_batch(completions, event_id, scope=scope)
            return [s.reward for s in scored]

        trainer = trainer_cls(model=self.policy, reward_funcs=market_reward, args=args, train_dataset=dataset,
                              processing_class=self.tok, optimizers=(self.optimizer, scheduler))
        _keep_knowledge_reference(self.policy)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        logs = [h for h in trainer.state.log_history if "loss" in h]
        last = logs[-1] if logs else {}
        nan = float("nan")
        stats = {
            "score": float(np.mean([s.reward for s in scored])),
            "kl": float(last.get("kl", nan)),
            "response_length": float(last.get("completions/mean_length", nan)),
            "truncated": float(last.get("completions/clipped_ratio", nan)),
            "pg_loss": float(last.get("loss", nan)), "vf_loss": nan,
            "clipfrac": float(last.get("clip_ratio/region_mean", nan)), "approx_kl": nan,
        }
        self.policy.eval()
        self.steps_done += 1
        return StepResult(stats, list(scored), seconds)
