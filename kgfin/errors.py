"""Exceptions for expected failures (bad input, bad config): the CLI prints them as one line.

Kept free of imports so that catching them costs nothing.
"""

__all__ = ["KgfinError"]


class KgfinError(Exception):
    """Base of kgfin's expected errors: bad input data, bad configuration, missing resources."""
