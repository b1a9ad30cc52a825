"""Run the docstring examples of the asset-pricing, reward, statistics, portfolio and news-embedding modules."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "kgfin.market.returns",
    "kgfin.align.reward",
    "kgfin.evaluate.stats",
    "kgfin.evaluate.metrics",
    "kgfin.evaluate.uncertainty",
    "kgfin.evaluate.long_short",
    "kgfin.tables",
    "kgfin.data.calendar",
    "kgfin.portfolio.metrics",
    "kgfin.portfolio.allocators",
    "kgfin.portfolio.deciles",
    "kgfin.llm.embeddings",
    "kgfin.llm.sentiment",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
