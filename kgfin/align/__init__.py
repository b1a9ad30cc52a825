"""Market alignment: ripple propagation, the market reward, PPO (and TRL's GRPO / RLOO), prediction.

See ``docs/alignment.md``. ``kgfin.align.ppo`` (torch modules) is imported by the
functions that train, not here.
"""

from kgfin.align.config import (
    AlignConfig,
    DecodingConfig,
    EventConfig,
    ExperimentalConfig,
    ImpactRewardConfig,
    PPOConfig,
)
from kgfin.align.decoding import Decoder
from kgfin.align.events import AlignInputError, events_from_news, news_events
from kgfin.align.impact_reward import ImpactReward, ScoredAnswer, build_impact_reward
from kgfin.align.predict import (
    LLM_METHODS,
    ModelVariant,
    Prediction,
    graph_facts,
    predict_events,
    prediction_frame,
    ripple_paths,
)
from kgfin.align.reward import (
    PropagationConfig,
    RewardConfig,
    RewardInputError,
    propagate,
    reward_from_impacts,
    ripple_reward,
)
from kgfin.align.trainer import AlignResult, align, reward_trend

__all__ = [
    "LLM_METHODS", "AlignConfig", "AlignInputError", "AlignResult", "Decoder", "DecodingConfig", "EventConfig",
    "ExperimentalConfig", "ImpactReward", "ImpactRewardConfig", "ModelVariant", "PPOConfig", "Prediction",
    "PropagationConfig", "RewardConfig", "RewardInputError", "ScoredAnswer", "align", "build_impact_reward",
    "events_from_news", "graph_facts", "news_events", "predict_events", "prediction_frame", "propagate",
    "reward_from_impacts", "reward_trend", "ripple_paths", "ripple_reward",
]
