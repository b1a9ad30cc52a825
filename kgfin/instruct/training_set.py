"""A month's training set: its own pairs plus the rotating buffer of earlier months' top pairs."""

from __future__ import annotations

from collections.abc import Callable

from kgfin.data.calendar import add_months
from kgfin.graph import GraphSnapshot
from kgfin.instruct.buffer import RotatingBuffer
from kgfin.instruct.config import InstructConfig
from kgfin.instruct.generate import InstructionPair, generate_pairs

__all__ = ["training_pairs"]


def training_pairs(
    month: str,
    snapshot_of: Callable[[str], GraphSnapshot | None],
    cfg: InstructConfig | None = None,
) -> list[InstructionPair]:
    """Pairs for ``month``'s adapter: the month's own pairs, then the carried buffer.

    ``snapshot_of(m)`` returns month m's snapshot (None where there is none). Only months up
    to ``month`` are read: the buffer is filled from the ``buffer_months`` months before it,
    oldest first, so the training set is point-in-time.
    """
    cfg = cfg or InstructConfig()
    snap = snapshot_of(month)
    if snap is None:
        raise ValueError(f"no graph snapshot for {month}")
    own = generate_pairs(snap, cfg)
    if cfg.buffer_size == 0:
        return own
    buffer = RotatingBuffer(cfg.buffer_size)
    for k in range(cfg.buffer_months, 0, -1):
        earlier = snapshot_of(add_months(month, -k))
        if earlier is not None:
            buffer.add(generate_pairs(earlier, cfg))
    seen = {p.instruction for p in own}
    return own + [p for p in buffer.pairs if p.instruction not in seen]
