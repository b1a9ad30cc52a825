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

    ``fused=True`` (the default) computes the same sum as one sparse product over all relations, which is
    2-3x faster on the CPU for a month graph (measured on 120 firms, 64 events a batch): the gate is linear in
    :math:`\phi(w)`, so :math:`\mathrm{RelationConv}_r(\mathbf{h})_i = \sum_j (A_{r,ij}\, \mathbf{u}_{r,1}
    + S_{r,ij}\, \mathbf{u}_{r,2}) \odot (\mathbf{W}_r \mathbf{h})_j` with :math:`A_{r,ij} = \sum w_{j,i}`,
    :math:`S_{r,ij} = \sum \sqrt{w_{j,i}}` over the edges j -> i and :math:`\mathbf{u}_{r,\cdot}` the gate's
    columns. ``fused=False`` runs ``HeteroConv``'s message passing (equal up to float rounding; tested).

    Shapes:
        h (*, N, F_in), edge_index_dict {edge type: (2, E_r)}, edge_weight_dict {edge type: (E_r,)} -> (*, N, F_out)
    """

    def __init__(self, edge_types: Sequence[EdgeType], in_channels: int, out_channels: int,
                 activation: Literal["tanh", "relu", "identity"] = "tanh", fused: bool = True) -> None:
        super().__init__()
        self.edge_types = list(edge_types)
        self.fused = fused
        self.root = nn.Linear(in_channels, out_channels, bias=False)
        self.convs = HeteroConv({et: RelationConv(in_channels, out_channels) for et in edge_types}, aggr="sum") \
            if edge_types else None
        self.act = ACTIVATIONS[activation]()

    def forward(self, h: Tensor, edge_index_dict: dict[EdgeType, Tensor],
                edge_weight_dict: dict[EdgeType, Tensor]) -> Tensor:
        out = self.root(h)  # (*, N, F_out)
        if self.convs is not None:
            if self.fused:
                out = out + self._fused_messages(h, edge_index_dict, edge_weight_dict)
            else:
                out = out + self.convs({"company": h}, edge_index_dict, edge_weight_dict=edge_weight_dict)["company"]
        return self.act(out)

    def _fused_messages(self, h: Tensor, edge_index_dict: dict[EdgeType, Tensor],
                        edge_weight_dict: dict[EdgeType, Tensor]) -> Tensor:
        """Every relation's messages as one sparse product (class docstring): (*, N, F_in) -> (*, N, F_out)."""
        n = h.shape[-2]
        present = [et for et in self.edge_types if et in edge_index_dict]
        if not present:
            return torch.zeros((*h.shape[:-1], self.root.out_features), dtype=h.dtype, device=h.device)
        convs = [self.convs.convs[et] for et in present]
        adj = h.new_zeros((len(present), 2, n, n))  # (R, 2, N, N): A_r and S_r, target x source
        for r, et in enumerate(present):
            src, dst = edge_index_dict[et]
            w = edge_weight_dict[et].to(h.dtype).clamp(min=0)
            adj[r, 0].index_put_((dst, src), w, accumulate=True)
            adj[r, 1].index_put_((dst, src), w.sqrt(), accumulate=True)
        weight = torch.cat([c.lin.weight for c in convs], dim=0)  # (R * F_out, F_in)
        gate = torch.stack([c.gate.weight.T for c in convs])  # (R, 2, F_out)
        lead, f_out = h.shape[:-2], self.root.out_features
        wx = (h.reshape(-1, n, h.shape[-1]) @ weight.T).unflatten(-1, (len(present), 1, f_out))  # (B, N, R, 1, F_out)
        z = (wx * gate).flatten(1, 3)  # (B, N * R * 2, F_out): each source's transform, gated per relation and term
        a = adj.permute(2, 3, 0, 1).reshape(n, -1)  # (N, N * R * 2), the same (source, relation, term) order
        msg = torch.sparse.mm(a.to_sparse(), z.transpose(0, 1).reshape(z.shape[1], -1))  # (N, B * F_out)
        return msg.unflatten(-1, (-1, f_out)).transpose(0, 1).reshape(*lead, n, f_out)
