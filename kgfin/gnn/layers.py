"""The GNN's layers: a strength-gated message over one relation, and one relational layer over all of them.

This module imports torch and torch-geometric at the top; import it only where they are needed
(``kgfin.gnn`` itself stays light).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn
from torch_geometric.nn import HeteroConv, MessagePassing

__all__ = ["ACTIVATIONS", "RelationConv", "RelationalLayer"]

EdgeType = tuple[str, str, str]
ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "identity": nn.Identity}


class RelationConv(MessagePassing):
    r"""Messages over one relation, each gated channel by channel by a learned response to the edge strength:

    .. math::
        \mathbf{x}'_i = \sum_{j \in \mathcal{N}(i)} \big(\mathbf{U}\, \phi(w_{j,i})\big) \odot \mathbf{W} \mathbf{x}_j,
        \qquad \phi(w) = [w, \sqrt{w}]

    Bias-free: a node hears nothing from neighbours whose features are zero. The strength response is
    a learned mix of a linear and a concave term (a share of 0.04 may matter half as much as 0.16).

    Shapes:
        x (*, N, F_in), edge_index (2, E), edge_weight (E,) -> (*, N, F_out); ``*`` a batch of events on the
        same graph (torch-geometric's static-graph mode, ``node_dim=-2``).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(aggr="add", node_dim=-2)
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.gate = nn.Linear(2, out_channels, bias=False)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor) -> Tensor:
        w = edge_weight.clamp(min=0).unsqueeze(-1)  # (E, 1)
        gate = self.gate(torch.cat([w, w.sqrt()], dim=-1))  # (E, F_out)
        return self.propagate(edge_index, x=self.lin(x), gate=gate)

    def message(self, x_j: Tensor, gate: Tensor) -> Tensor:
        return gate * x_j  # (*, E, F_out)


class RelationalLayer(nn.Module):
    r"""One relational layer: the node's own features plus every relation's gated messages.

    .. math::
        \mathbf{h}'_i = \sigma\Big(\mathbf{W}_0 \mathbf{h}_i + \sum_{r} \mathrm{RelationConv}_r(\mathbf{h})_i\Big)

    with one :class:`RelationConv` per edge type (summed by torch-geometric's ``HeteroConv``) and
    :math:`\sigma` the activation. No biases: zero in, zero out.

    Shapes:
        h (*, N, F_in), edge_index_dict {edge type: (2, E_r)}, edge_weight_dict {edge type: (E_r,)} -> (*, N, F_out)
    """

    def __init__(self, edge_types: Sequence[EdgeType], in_channels: int, out_channels: int,
                 activation: Literal["tanh", "relu", "identity"] = "tanh") -> None:
        super().__init__()
        self.root = nn.Linear(in_channels, out_channels, bias=False)
        self.convs = HeteroConv({et: RelationConv(in_channels, out_channels) for et in edge_types}, aggr="sum") \
            if edge_types else None
        self.act = ACTIVATIONS[activation]()

    def forward(self, h: Tensor, edge_index_dict: dict[EdgeType, Tensor],
                edge_weight_dict: dict[EdgeType, Tensor]) -> Tensor:
        out = self.root(h)  # (*, N, F_out)
        if self.convs is not None:
            out = out + self.convs({"company": h}, edge_index_dict, edge_weight_dict=edge_weight_dict)["company"]
        return self.act(out)
