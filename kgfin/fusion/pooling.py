"""Learned attention pooling of frozen token states, trained with the return head.

With ``embed.pooling: attention`` a headline's vector is not fixed: :class:`AttentionPoolEncoder`
holds the frozen language model's token states of every panel text (one pass,
:meth:`kgfin.llm.embeddings.NewsEmbedder.token_states`) and an
:class:`kgfin.fusion.models.AttentionPool` whose weights train with the return model's loss
(the same optimiser, at ``model.pool_lr``). Each stock-month gets the mean of its headline vectors,
as in the cached path. The interface is :class:`kgfin.fusion.lora.LoraNewsEncoder`'s, so
:func:`kgfin.fusion.train.fit_model` takes either as ``encoder``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from kgfin.llm.embeddings import TokenStates

if TYPE_CHECKING:
    import torch

    from kgfin.fusion.features import Panel

__all__ = ["AttentionPoolEncoder", "stock_month_mean"]


def stock_month_mean(panel: Panel, rows: np.ndarray, items: Callable[[np.ndarray], torch.Tensor],
                     dim: int) -> torch.Tensor:
    """(len(rows), dim) mean of each stock-month's headline vectors (zeros where it has none).

    ``items(ids)`` gives the vectors of the distinct text indices ``ids`` (into ``panel.texts``).
    """
    import torch

    lists = panel.news_lists(rows)
    counts = np.array([len(x) for x in lists])
    out = torch.zeros(len(rows), dim)
    if counts.sum() == 0:
        return out
    flat = np.concatenate(lists)
    owner = torch.from_numpy(np.repeat(np.arange(len(rows)), counts))
    ids, inverse = np.unique(flat, return_inverse=True)
    vecs = items(ids)[torch.from_numpy(inverse)]
    out = out.index_add(0, owner, vecs)
    return out / torch.from_numpy(np.maximum(counts, 1)).unsqueeze(-1).to(out.dtype)


class AttentionPoolEncoder:
    """Stock-month vectors from frozen token states through a trainable attention pool (see the module doc)."""

    def __init__(self, states: TokenStates, hidden: int = 64, seed: int = 0, normalize: bool = False,
                 lr: float | None = None) -> None:
        import torch

        from kgfin.fusion.models import AttentionPool

        self.states = torch.from_numpy(states.states)  # (n_texts, T, d)
        self.mask = torch.from_numpy(states.mask)  # (n_texts, T)
        self.dim = int(self.states.shape[-1]) if self.states.ndim == 3 else 1
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.pool = AttentionPool(self.dim, hidden)
        self.normalize = normalize
        self.lr = lr  # learning rate of the pool (None: the optimiser's default for encoders)
        self.n_trainable = sum(p.numel() for p in self.pool.parameters())
        self._best: dict[str, torch.Tensor] | None = None

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """The attention pool's weights."""
        return list(self.pool.parameters())

    def train(self) -> None:
        self.pool.train()

    def eval(self) -> None:
        self.pool.eval()

    def _items(self, ids: np.ndarray) -> torch.Tensor:
        import torch

        idx = torch.from_numpy(np.asarray(ids, dtype=np.int64))
        v = self.pool(self.states[idx], self.mask[idx])
        if self.normalize:
            v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return v

    def rows(self, panel: Panel, rows: np.ndarray, grad: bool = True) -> torch.Tensor:
        """(len(rows), d) mean pooled headline vector per stock-month (zeros where there is no news)."""
        import torch

        if grad:
            return stock_month_mean(panel, rows, self._items, self.dim)
        with torch.no_grad():
            return stock_month_mean(panel, rows, self._items, self.dim)

    def snapshot(self) -> None:
        """Remember the current pool weights (the selected epoch's)."""
        self._best = {k: v.detach().clone() for k, v in self.pool.state_dict().items()}

    def restore(self) -> None:
        """Put back the remembered pool weights."""
        if self._best is not None:
            self.pool.load_state_dict(self._best)
