"""RippleGNN: an event's signal at the named firms, carried over the month's relations to every firm's ripple.

This module imports torch at the top; import it only where torch is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from kgfin.gnn.layers import EdgeType, RelationalLayer

__all__ = ["RippleGNN"]


class RippleGNN(nn.Module):
    r"""A stack of :class:`~kgfin.gnn.layers.RelationalLayer` and a linear read-out of every layer (jumping
    knowledge), so a firm's score can come from one hop (a direct neighbour) or two (the next supply-chain
    link) away:

    .. math::
        \mathbf{h}^{(0)} = \mathbf{x},\quad
        \mathbf{h}^{(l)} = \mathrm{RelationalLayer}_l(\mathbf{h}^{(l-1)}),\quad
        \hat y_i = \mathbf{w}^\top [\mathbf{h}^{(1)}_i \,\|\, \dots \,\|\, \mathbf{h}^{(L)}_i]

    ``x`` is zero away from the firms the news names (:mod:`kgfin.gnn.events`) and nothing has a bias,
    so a firm more than L hops from them scores exactly 0.

    Shapes:
        x (B, N, F), edge_index_dict {edge type: (2, E_r)}, edge_weight_dict {edge type: (E_r,)} -> (B, N)
    """

    def __init__(self, edge_types: Sequence[EdgeType], in_channels: int, hidden: int = 32, layers: int = 2,
                 activation: Literal["tanh", "relu", "identity"] = "tanh") -> None:
        super().__init__()
        dims = [in_channels] + [hidden] * layers
        self.layers = nn.ModuleList(RelationalLayer(edge_types, a, b, activation) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.readout = nn.Linear(hidden * layers, 1, bias=False)

    def forward(self, x: Tensor, edge_index_dict: dict[EdgeType, Tensor],
                edge_weight_dict: dict[EdgeType, Tensor]) -> Tensor:
        hs, h = [], x
        for layer in self.layers:
            h = layer(h, edge_index_dict, edge_weight_dict)  # (B, N, hidden)
            hs.append(h)
        return self.readout(torch.cat(hs, dim=-1)).squeeze(-1)  # (B, N)
