"""Market alignment: ripple propagation and the reward (PPO / GRPO / RLOO come later)."""

from kgfin.align.reward import (
    PropagationConfig,
    RewardConfig,
    RewardInputError,
    propagate,
    reward_from_impacts,
    ripple_reward,
)

__all__ = [
    "PropagationConfig", "RewardConfig", "RewardInputError", "propagate", "reward_from_impacts",
    "ripple_reward",
]
