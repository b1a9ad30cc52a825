"""Evaluation: asset-pricing statistics of predicted impacts against realised residuals, the ripple tables, and the
ripple evaluation v2 (same candidates for every method, rank IC with CIs, paired tests, the predictor registry)."""

from kgfin.evaluate.long_short import long_short_on_scores
from kgfin.evaluate.predictors import (
    PREDICTORS,
    AnsweringPredictor,
    EventScores,
    Predictor,
    RippleContext,
    build_predictor,
)
from kgfin.evaluate.ripple import ALL_METHODS, RippleEvalConfig, RippleEvaluation, run_ripple_eval
from kgfin.evaluate.stats import (
    ImpactStats,
    ImpactStatsConfig,
    StatsInputError,
    group_summary,
    group_tests,
    impact_groups,
    impact_regression,
    impact_stats,
    refusal_rate,
)
from kgfin.evaluate.v2 import RippleV2Config, RippleV2Result, prepare_v2, run_ripple_v2, score_v2
from kgfin.tables import markdown_table

__all__ = [
    "ALL_METHODS", "RippleEvalConfig", "RippleEvaluation", "run_ripple_eval",
    "ImpactStats", "ImpactStatsConfig", "StatsInputError", "group_summary", "group_tests",
    "impact_groups", "impact_regression", "impact_stats", "markdown_table", "refusal_rate",
    "PREDICTORS", "AnsweringPredictor", "EventScores", "Predictor", "RippleContext", "build_predictor",
    "RippleV2Config", "RippleV2Result", "long_short_on_scores", "prepare_v2", "run_ripple_v2", "score_v2",
]
