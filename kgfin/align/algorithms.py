"""Alignment algorithms behind one small protocol: the month loop calls :meth:`AlignmentAlgorithm.step`.

* ``ppo``: kgfin's PPO (:mod:`kgfin.align.ppo`: value head, GAE, per-token KL), with the
  decoder's grammar and first entries;
* ``grpo`` / ``rloo``: one optimiser step of TRL's trainer per batch
  (:class:`kgfin.align.trl_algos.TRLAlgorithm`).

:func:`kgfin.align.trainer.make_algorithm` builds the one ``AlignConfig.algo`` names.

Every algorithm scores answers with the same market reward,
:meth:`~kgfin.align.impact_reward.ImpactReward.score_batch`, and hands the scored answers back
in its :class:`StepResult`; the reward keeps no state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from kgfin.align.config import AlignConfig
from kgfin.align.decoding import Decoder
from kgfin.align.impact_reward import ImpactReward, ScoredAnswer
from kgfin.llm.prompts import SYSTEM_PROMPT

__all__ = ["STAT_KEYS", "AlignmentAlgorithm", "PPOAlgorithm", "StepResult"]

STAT_KEYS = ("score", "kl", "response_length", "truncated", "pg_loss", "vf_loss", "clipfrac", "approx_kl")


@dataclass
class StepResult:
    """One update: statistics (:data:`STAT_KEYS`, NaN where an algorithm has no such figure), the scored answers and
    the step's wall time."""

    stats: dict[str, float]
    scored: list[ScoredAnswer]
    seconds: float


class AlignmentAlgorithm(Protocol):
    """One update of the policy on a batch of news items."""

    def step(self, messages: Sequence[str], event_ids: Sequence[str],
             first_entries: Sequence[Collection[str] | None] | None) -> StepResult:
        """Answer ``messages`` (user prompts; ``first_entries`` per item under the grammar), score, update."""
        ...

    def state_dict(self) -> dict[str, Any] | None:
        """What to carry to the next month and into checkpoints (optimiser, value head, ...)."""
        ...


class PPOAlgorithm:
    """kgfin's PPO on chat-formatted prompts, rewarded by ``reward`` at ``cfg.experimental.reward_scope``."""

    def __init__(self, policy: Any, tokenizer: Any, reward: ImpactReward, cfg: AlignConfig, decoder: Decoder, *,
                 grammar: Any = None, reference_model: Any = None,
                 reference_context: Callable[[], AbstractContextManager[Any]] | None = None,
                 state: dict[str, Any] | None = None):
        from kgfin.align.ppo import PPOTrainer

        scope = cfg.experimental.reward_scope

        def score(completions: list[str], event_id: list[str], **_: Any) -> list[ScoredAnswer]:
            return reward.score_batch(completions, event_id, scope=scope)

        self.tok, self.prefix = tokenizer, decoder.prefix
        self.trainer = PPOTrainer(policy, tokenizer, score, cfg.ppo, reference_model=reference_model,
                                  reference_context=reference_context, answer_prefix=decoder.prefix, grammar=grammar,
                                  stop_at_json_end=decoder.stop_at_json_end, experimental=cfg.experimental)
        if state is not None:
            self.trainer.load_state_dict(state)

    def step(self, messages: Sequence[str], event_ids: Sequence[str],
             first_entries: Sequence[Collection[str] | None] | None) -> StepResult:
        from kgfin.llm.generate import chat_prompts

        prompts = chat_prompts(self.tok, list(messages), system=SYSTEM_PROMPT, prefix=self.prefix)
        start = time.perf_counter()
        result = self.trainer.step(prompts, first_entries=first_entries, event_id=list(event_ids))
        return StepResult(result.stats, result.scored, time.perf_counter() - start)

    def state_dict(self) -> dict[str, Any] | None:
        return self.trainer.state_dict()
