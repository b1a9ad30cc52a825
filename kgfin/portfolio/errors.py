"""The portfolio package's error type (kept apart so every module can import it)."""

from kgfin.errors import KgfinError

__all__ = ["PortfolioInputError"]


class PortfolioInputError(KgfinError, ValueError):
    """Signals, returns or settings a portfolio cannot be built from."""
