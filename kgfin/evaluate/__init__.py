"""Evaluation: asset-pricing statistics of predicted impacts against realised residuals."""

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
from kgfin.evaluate.tables import markdown_table

__all__ = [
    "ImpactStats", "ImpactStatsConfig", "StatsInputError", "group_summary", "group_tests",
    "impact_groups", "impact_regression", "impact_stats", "markdown_table", "refusal_rate",
]
