"""The rotating buffer: the highest-weight pairs of earlier months, carried into later training sets.

FinRipple keeps a buffer of high-impact facts so that a month's adapter does not forget
the strongest relationships of the recent past. The buffer holds at most ``size`` pairs,
ranked by weight (the strength of the edges behind them); ties are broken by month and
text so the result is deterministic. Carried pairs keep their own month in their text,
so they stay true statements.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from kgfin.instruct.generate import InstructionPair

__all__ = ["RotatingBuffer"]


class RotatingBuffer:
    """Keeps the ``size`` highest-weight pairs seen so far."""

    def __init__(self, size: int):
        if size < 0:
            raise ValueError("buffer size must be >= 0")
        self.size = size
        self._pairs: list[InstructionPair] = []

    def add(self, pairs: Iterable[InstructionPair]) -> None:
        """Offer a month's pairs; the buffer keeps the top ``size`` of old and new ("no" pairs never qualify)."""
        if self.size == 0:
            return
        candidates = self._pairs + [replace(p, carried=True) for p in pairs if p.weight > 0]
        unique = {p.instruction: p for p in sorted(candidates, key=lambda p: (p.month, p.instruction))}
        ranked = sorted(unique.values(), key=lambda p: (-p.weight, p.month, p.instruction))
        self._pairs = ranked[: self.size]

    @property
    def pairs(self) -> list[InstructionPair]:
        """The carried pairs, highest weight first."""
        return list(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)
