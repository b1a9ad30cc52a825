"""Evaluation: asset-pricing statistics of predicted impacts against realised residuals, and the ripple tables."""

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
from kgfin.tables import markdown_table

__all__ = [
    "ALL_METHODS", "RippleEvalConfig", "RippleEvaluation", "run_ripple_eval",
    "ImpactStats", "ImpactStatsConfig", "StatsInputError", "group_summary", "group_tests",
    "impact_groups", "impact_regression", "impact_stats", "markdown_table", "refusal_rate",
]
