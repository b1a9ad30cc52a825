"""Asset-pricing inputs: returns, rolling factor loadings, CAPM / FF3 / FF5 residuals.

See ``docs/asset-pricing.md`` for the formulas and the point-in-time rules.
"""

from kgfin.market.betas import RollingFit, rolling_ols
from kgfin.market.residuals import (
    FACTOR_MODELS,
    ResidualConfig,
    monthly_residuals,
    residual_vector,
    residuals,
)
from kgfin.market.returns import (
    MarketInputError,
    compound,
    excess_returns,
    monthly_returns,
    to_long,
    to_wide,
)

__all__ = [
    "FACTOR_MODELS", "MarketInputError", "ResidualConfig", "RollingFit", "compound",
    "excess_returns", "monthly_residuals", "monthly_returns", "residual_vector", "residuals", "rolling_ols",
    "to_long", "to_wide",
]
