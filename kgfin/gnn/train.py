"""Fitting the RippleGNN on past events (masked Huber or MSE loss, Adam, early stopping on a validation month's mean
rank IC) and scoring.

Targets are divided by their standard deviation over the training events (the scale is undone when
scoring). Seeded: the same events, graphs and settings give the same scores on the same device.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kgfin.errors import KgfinError
from kgfin.gnn.config import GnnConfig
from kgfin.gnn.events import EventEncoder, by_graph_month, node_inputs, targets
from kgfin.gnn.graph import RelationGraph, edge_types

if TYPE_CHECKING:
    import torch

__all__ = ["FitReport", "FittedGnn", "fit_gnn", "resolve_device", "torch_threads"]

log = logging.getLogger(__name__)

GraphOf = Callable[[str], RelationGraph]


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise KgfinError("gnn.device is cuda but no GPU is visible (set it to auto or cpu)")
    return device


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads, restoring the previous number afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class FitReport:
    """What one fit did: events, epochs, the best epoch's losses (on scaled targets) and validation mean rank IC,
    time, parameters."""

    train_events: int
    val_events: int
    epochs: int
    best_epoch: int
    train_loss: float
    val_loss: float
    val_rank_ic: float
    seconds: float
    parameters: int
    device: str


def _rank_ic(pred: np.ndarray, y: np.ndarray, mask: np.ndarray) -> list[float]:
    """Per event (rows), the Spearman correlation of predictions and targets over the masked firms (NaN if either is
    constant)."""
    from scipy.stats import rankdata

    out = []
    for p, t, m in zip(pred, y, mask, strict=True):
        a, b = rankdata(p[m]), rankdata(t[m])
        out.append(float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else np.nan)
    return out


def _graph_tensors(graph: RelationGraph, device: str) -> tuple[dict, dict]:
    import torch

    ei = {et: torch.as_tensor(e, device=device) for et, (e, _) in graph.edges.items()}
    ew = {et: torch.as_tensor(w, device=device) for et, (_, w) in graph.edges.items()}
    return ei, ew


@dataclass
class _Batch:
    graph_month: str
    x: torch.Tensor  # (B, N, F)
    y: torch.Tensor  # (B, N) scaled targets, 0 where masked
    mask: torch.Tensor  # (B, N) bool


def _batches(events: pd.DataFrame, graph_of: GraphOf, moves: pd.DataFrame, encoder: EventEncoder, size: int,
             scale: float, device: str) -> list[_Batch]:
    import torch

    out = []
    for g, part in by_graph_month(events):
        graph = graph_of(g)
        for lo in range(0, len(part), size):
            chunk = part.iloc[lo:lo + size]
            y = targets(chunk, graph, moves) / scale
            mask = np.isfinite(y)
            out.append(_Batch(g, torch.as_tensor(node_inputs(chunk, graph, encoder), device=device),
                              torch.as_tensor(np.where(mask, y, 0.0), dtype=torch.float32, device=device),
                              torch.as_tensor(mask, device=device)))
    return out


@dataclass
class FittedGnn:
    """A trained model with what scoring needs: the event vocabulary, the target scale, the relations."""

    model: Any  # kgfin.gnn.model.RippleGNN
    encoder: EventEncoder
    scale: float
    cfg: GnnConfig
    device: str
    report: FitReport

    def scores(self, events: pd.DataFrame, graph_of: GraphOf) -> dict[str, np.ndarray]:
        """Event id -> (N,) predicted window residual of every firm of the event's graph month (graph order)."""
        import torch

        out: dict[str, np.ndarray] = {}
        self.model.eval()
        with torch.no_grad(), torch_threads(self.cfg.cpu_threads):
            for g, part in by_graph_month(events):
                graph = graph_of(g)
                ei, ew = _graph_tensors(graph, self.device)
                x = torch.as_tensor(node_inputs(part, graph, self.encoder), device=self.device)
                pred = self.model(x, ei, ew).cpu().numpy().astype(float) * self.scale  # (B, N)
                out.update(zip(part["event_id"].astype(str), pred, strict=True))
        return out


def fit_gnn(train: pd.DataFrame, val: pd.DataFrame, graph_of: GraphOf, moves: pd.DataFrame,
            cfg: GnnConfig | None = None) -> FittedGnn:
    """Fit a :class:`~kgfin.gnn.model.RippleGNN` on ``train`` events (their realised ``moves``: window start x
    ticker), keeping the epoch with the best ``cfg.stop_on`` on ``val``. The caller guarantees both are point in time
    (:func:`kgfin.gnn.events.point_in_time`)."""
    cfg = cfg or GnnConfig()
    with torch_threads(cfg.cpu_threads):
        return _fit(train, val, graph_of, moves, cfg)


def _fit(train: pd.DataFrame, val: pd.DataFrame, graph_of: GraphOf, moves: pd.DataFrame, cfg: GnnConfig
         ) -> FittedGnn:
    import torch

    from kgfin.gnn.model import RippleGNN

    if len(train) < cfg.min_train_events or val.empty:
        raise KgfinError(f"GNN training needs at least {cfg.min_train_events} training events and a validation "
                         f"month; got {len(train)} and {len(val)} (raise gnn.train_months or score later months)")
    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    encoder = EventEncoder.fit(train)
    raw = np.concatenate([targets(part, graph_of(g), moves).ravel() for g, part in by_graph_month(train)])
    scale = float(np.nanstd(raw)) or 1.0
    tr = _batches(train, graph_of, moves, encoder, cfg.batch_events, scale, device)
    va = _batches(val, graph_of, moves, encoder, cfg.batch_events, scale, device)
    graphs = {b.graph_month: _graph_tensors(graph_of(b.graph_month), device) for b in tr + va}
    torch.manual_seed(cfg.seed)
    model = RippleGNN(edge_types(cfg.relations), encoder.input_dim, cfg.hidden, cfg.layers, cfg.activation).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)

    def loss_of(b: _Batch) -> tuple[torch.Tensor, torch.Tensor]:
        pred = model(b.x, *graphs[b.graph_month])  # (B, N)
        if cfg.loss == "huber":
            loss = torch.nn.functional.huber_loss(pred, b.y, reduction="none", delta=cfg.huber_delta)
        else:
            loss = (pred - b.y) ** 2
        return loss[b.mask].sum(), pred

    best, best_epoch, best_state, train_loss, epoch = -np.inf, 0, copy.deepcopy(model.state_dict()), np.nan, 0
    best_loss = best_ic = np.nan
    n_tr = sum(int(b.mask.sum()) for b in tr)
    n_va = sum(int(b.mask.sum()) for b in va)
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        total = 0.0
        for k in rng.permutation(len(tr)):
            opt.zero_grad()
            loss, _ = loss_of(tr[k])
            (loss / max(int(tr[k].mask.sum()), 1)).backward()
            opt.step()
            total += float(loss.detach())
        model.eval()
        val_loss, ics = 0.0, []
        with torch.no_grad():
            for b in va:
                loss, pred = loss_of(b)
                val_loss += float(loss) / max(n_va, 1)
                ics += _rank_ic(pred.cpu().numpy(), b.y.cpu().numpy(), b.mask.cpu().numpy())
        val_ic = float(np.nanmean(ics)) if np.isfinite(ics).any() else 0.0
        score = val_ic if cfg.stop_on == "rank_ic" else -val_loss
        if epoch >= cfg.min_epochs and score > best:
            best, best_epoch, best_state = score, epoch, copy.deepcopy(model.state_dict())
            train_loss, best_loss, best_ic = total / n_tr, val_loss, val_ic
        elif epoch >= cfg.min_epochs and epoch - max(best_epoch, cfg.min_epochs) >= cfg.patience:
            break
    model.load_state_dict(best_state)
    report = FitReport(len(train), len(val), epoch, best_epoch, float(train_loss), float(best_loss), float(best_ic),
                       time.perf_counter() - t0, sum(p.numel() for p in model.parameters()), device)
    log.info("gnn fit: %d training / %d validation events, best epoch %d of %d, val loss %.4f, val rank IC %.4f, "
             "%.1f s on %s", report.train_events, report.val_events, best_epoch, epoch, best_loss, best_ic,
             report.seconds, device)
    return FittedGnn(model, encoder, scale, cfg, device, report)
