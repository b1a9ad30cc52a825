"""GRPO and RLOO alignment steps through TRL, with kgfin's market reward.

``kgfin align --set algo=grpo`` (or ``rloo``) runs the same month loop as PPO
(:mod:`kgfin.align.trainer`), but each step is one optimiser step of TRL's
``GRPOTrainer`` / ``RLOOTrainer`` on the batch's news: ``num_generations`` answers per item,
each scored by :class:`~kgfin.align.impact_reward.ImpactReward`, advantages relative to the
item's group (no value head), KL to the reference with coefficient ``ppo.kl_coef``. The
policy is the month's PEFT model (alignment LoRA on the merged knowledge adapter), so TRL's
reference is that model with the LoRA switched off, exactly as for PPO. One AdamW optimiser
is passed to every step and carried over months, so its moments persist as in PPO.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kgfin.align.config import AlignConfig
from kgfin.align.impact_reward import ImpactReward, ScoredAnswer
from kgfin.llm.prompts import SYSTEM_PROMPT

if TYPE_CHECKING:
    from kgfin.align.trainer import _MonthPolicy

__all__ = ["trl_step"]


def _reward_function(reward: ImpactReward) -> Any:
    def market_reward(prompts: list[Any], completions: list[Any], event_id: list[str], **_: Any) -> list[float]:
        return reward(prompts=prompts, completions=completions, event_id=event_id)

    return market_reward


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


def trl_step(policy: _MonthPolicy, reward: ImpactReward, messages: list[str], event_ids: list[str], cfg: AlignConfig,
             work: Path, step: int) -> tuple[dict[str, float], list[ScoredAnswer], float]:
    """One GRPO / RLOO optimiser step on ``messages``; returns PPO-style statistics, the scored answers, seconds."""
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    g = cfg.num_generations
    prefill = [{"role": "assistant", "content": cfg.answer_prefix}] if cfg.answer_prefix else []
    dataset = Dataset.from_dict({
        "prompt": [[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": m}, *prefill]
                   for m in messages],
        "event_id": list(event_ids),
    })
    common = dict(
        output_dir=str(work), use_cpu=not torch.cuda.is_available(), bf16=False, report_to=[], save_strategy="no",
        logging_steps=1, disable_tqdm=True, max_steps=1, per_device_train_batch_size=len(messages) * g,
        num_generations=g, steps_per_generation=1, num_iterations=1, beta=cfg.ppo.kl_coef,
        max_completion_length=cfg.ppo.max_new_tokens, temperature=cfg.ppo.temperature, top_p=cfg.ppo.top_p,
        learning_rate=cfg.ppo.learning_rate, lr_scheduler_type="constant", warmup_steps=0,
        max_grad_norm=cfg.ppo.max_grad_norm, shuffle_dataset=False, seed=cfg.ppo.seed + step, data_seed=cfg.ppo.seed,
        dataloader_num_workers=0,
    )
    if policy.optimizer is None:
        params = [p for p in policy.policy.parameters() if p.requires_grad]
        policy.optimizer = torch.optim.AdamW(params, lr=cfg.ppo.learning_rate)
        if policy.optimizer_state is not None:
            policy.optimizer.load_state_dict(policy.optimizer_state)
    scheduler = torch.optim.lr_scheduler.LambdaLR(policy.optimizer, lambda _: 1.0)
    if cfg.algo == "grpo":
        args: Any = GRPOConfig(**common)
        trainer_cls: Any = GRPOTrainer
    else:
        args = RLOOConfig(**common)
        trainer_cls = RLOOTrainer
    trainer = trainer_cls(model=policy.policy, reward_funcs=_reward_function(reward), args=args,
                          train_dataset=dataset, processing_class=policy.tok, optimizers=(policy.optimizer, scheduler))
    _keep_knowledge_reference(policy.policy)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    logs = [h for h in trainer.state.log_history if "loss" in h]
    last = logs[-1] if logs else {}
    scored = reward.last
    nan = float("nan")
    stats = {
        "score": float(np.mean([s.reward for s in scored])),
        "kl": float(last.get("kl", nan)),
        "response_length": float(last.get("completions/mean_length", nan)),
        "truncated": float(last.get("completions/clipped_ratio", nan)),
        "pg_loss": float(last.get("loss", nan)), "vf_loss": nan,
        "clipfrac": float(last.get("clip_ratio/region_mean", nan)), "approx_kl": nan,
    }
    policy.policy.eval()
    return stats, scored, seconds
