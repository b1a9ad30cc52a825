"""Training the return models: time-ordered split, conventional and decoupled mixtures.

Protocol: the panel's feature months are split in time order into train, validation and
test (:func:`split_months`); models are fitted on the training months only, the epoch whose
weights predict is chosen on the validation months (``train.select``), and the test months
are predicted out of sample once, at the end. The test split never feeds a choice.

Targets are scaled by their training-set standard deviation (so the decoupled temperature
``tau`` is in units of that deviation); predictions are returned in return units. Ripple
scores are divided by the training-set standard deviation of the non-missing scores; rows
without a score get 0 and a 0 flag.

**Conventional mixture** (eq. 9): one loss on the mixture output,
``L = mean_i (y_i - sum_k p_phi(k|x_i) y_hat_k(x_i))^2``, back-propagated into the gate and
every component, so each component's gradient is scaled by its gate weight and carries
the other components' errors.

**Decoupled mixture** (eqs. 12-15): each component fits the target on its own,

    L_comp = sum_k mean_i (y_i - y_hat_k(x_i))^2                                  (12)
    q_i    = softmax_k(-(y_i - y_hat_k^{(t-1)}(x_i))^2 / tau)                       (13)
    L_gate = mean_i KL(p_phi(.|x_i) || q_i) = mean_i sum_k p_k (log p_k - log q_ik)  (14)
    L      = L_comp + lambda * L_gate                                                (15)

where ``y_hat^{(t-1)}`` are the component predictions made with the parameters of the
previous step (the current forward pass, detached): ``q`` is a constant, so the KL term's
gradient reaches only the gate's parameters phi, and each component's gradient depends
only on its own error. Prediction is the gated mixture, as in eq. 9.

**Gradient variance** (Proposition 1), per mixture component (and the gate), two ways:

* ``loss = trajectory``: the gradients the optimiser actually used in each epoch (dropout
  on); ``raw`` = mean per-parameter variance over the epoch's steps.
* ``loss = conventional`` / ``decoupled``: at initialisation and after every epoch, the
  gradient of *both* losses at the same parameters, on a fixed set of
  ``train.grad_var_batches`` training mini-batches (the same for both training modes; eval
  mode, so mini-batch sampling is the only noise), around the full training-set gradient mu:
  ``raw = E_b ||g_b - mu||^2 / n_params``.

``relative`` divides the total variance by the squared norm of the mean gradient (a
scale-free noise-to-signal ratio: a conventional component's gradient is scaled by its gate
weight p_k, which shrinks its raw variance by about p_k^2 without making it any less noisy,
and Adam's steps do not depend on that scale). ``grad_norm`` is the mean gradient norm.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kgfin.errors import KgfinError
from kgfin.fusion.config import MIXTURE_MODELS, FusionConfig, SplitConfig
from kgfin.fusion.features import Panel
from kgfin.portfolio.deciles import information_coefficient

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["FitResult", "ModelData", "decoupled_target", "fit_model", "prepare_data", "split_months"]

log = logging.getLogger(__name__)
SPLITS = ("train", "valid", "test")


def split_months(months: list[str], config: SplitConfig) -> dict[str, str]:
    """Map each feature month to 'train', 'valid' or 'test', in time order."""
    months = sorted(months)
    n = len(months)
    if config.test_start or config.valid_start:
        test_start = config.test_start or months[n - max(1, round(config.test_fraction * n))]
        valid_start = config.valid_start or months[
            max(0, months.index(min(m for m in months if m >= test_start)) - max(1, round(config.valid_fraction * n)))]
        out = {m: "test" if m >= test_start else "valid" if m >= valid_start else "train" for m in months}
    else:
        n_test = max(1, round(config.test_fraction * n))
        n_valid = max(1, round(config.valid_fraction * n))
        out = {m: "train" if i < n - n_test - n_valid else "valid" if i < n - n_test else "test"
               for i, m in enumerate(months)}
    counts = {s: sum(v == s for v in out.values()) for s in SPLITS}
    if min(counts.values()) < 1:
        raise KgfinError(f"split of {n} months leaves an empty part ({counts}); need more months or other split settings")
    return out


@dataclass
class ModelData:
    """Model-ready arrays for every panel row, with the split and the scalings fitted on train."""

    panel: Panel
    split: np.ndarray  # (n,) 'train' | 'valid' | 'test'
    x_n: np.ndarray | None  # (n, N) pooled newsflow vectors; None when the language model is fine-tuned
    d_n: int
    x_r: np.ndarray  # (n, 2) ripple / train std, has_ripple
    y: np.ndarray  # (n,) target / y_scale
    y_scale: float
    ripple_scale: float
    rows: dict[str, np.ndarray] = field(default_factory=dict)  # split -> row indices

    @property
    def has_ripple_input(self) -> bool:
        return bool(self.panel.has_ripple.any())


def prepare_data(panel: Panel, item_vectors: np.ndarray | None, config: FusionConfig, d_n: int | None = None) -> ModelData:
    """Split the panel by month and scale target and ripple on the training rows.

    ``item_vectors`` (len(panel.texts), N) are the headline vectors; pass None (with ``d_n``)
    when the language model is fine-tuned and vectors are computed during training.
    """
    by_month = split_months(panel.months, config.split)
    split = panel.keys["month"].map(by_month).to_numpy()
    train = split == "train"
    y_scale = float(np.std(panel.y[train]))
    if not np.isfinite(y_scale) or y_scale <= 0:
        raise KgfinError("the training target has no variation")
    has_r = panel.has_ripple
    r_sd = float(np.std(panel.ripple[train & has_r])) if (train & has_r).sum() > 1 else 0.0
    ripple_scale = r_sd if r_sd > 0 else 1.0
    x_r = np.stack([panel.ripple / ripple_scale, has_r.astype(np.float32)], 1).astype(np.float32)
    if item_vectors is not None:
        if len(item_vectors) != len(panel.texts):
            raise KgfinError(f"{len(item_vectors)} news vectors for {len(panel.texts)} news texts")
        x_n = panel.pooled_news(item_vectors) if len(panel.texts) else np.zeros((len(panel), d_n or 1), np.float32)
        d_n = x_n.shape[1]
    else:
        if d_n is None:
            raise KgfinError("d_n is needed when no news vectors are given")
        x_n = None
    rows = {s: np.flatnonzero(split == s) for s in SPLITS}
    log.info("split: %s months, %s stock-months", {s: sum(v == s for v in by_month.values()) for s in SPLITS},
             {s: len(r) for s, r in rows.items()})
    return ModelData(panel=panel, split=split, x_n=x_n, d_n=int(d_n), x_r=x_r,
                     y=(panel.y / y_scale).astype(np.float32), y_scale=y_scale, ripple_scale=ripple_scale, rows=rows)


@dataclass
class FitResult:
    """A trained model's predictions, training curves and (mixtures) gradient statistics."""

    name: str
    ripple: bool
    lora: bool
    predictions: pd.DataFrame  # month, target_month, ticker, split, pred [, comp_<k>, weight_<k>]
    history: pd.DataFrame  # epoch, split, series, mse, ic (validation only)   (series: output or a component)
    grad_var: pd.DataFrame  # epoch, loss, component, raw, relative, grad_norm, n_params
    best_epoch: int
    seconds: float
    n_params: int
    model: Any = None


class _Inputs:
    """Builds the model inputs of a set of rows (pooled vectors, or a fine-tuned encoder)."""

    def __init__(self, data: ModelData, use_ripple: bool, encoder: Any = None) -> None:
        import torch

        self.t = torch
        self.x_f = torch.from_numpy(data.panel.x_f)
        self.x_n = torch.from_numpy(data.x_n) if data.x_n is not None else None
        self.has_news = torch.from_numpy(data.panel.has_news)
        self.x_r = torch.from_numpy(data.x_r) if use_ripple else None
        self.y = torch.from_numpy(data.y)
        self.encoder = encoder
        self.data = data

    def __call__(self, rows: np.ndarray, grad: bool = True) -> tuple[Any, ...]:
        idx = self.t.from_numpy(np.asarray(rows, dtype=np.int64))
        if self.encoder is not None:
            x_n = self.encoder.rows(self.data.panel, rows, grad=grad)
        else:
            x_n = self.x_n[idx] if self.x_n is not None else None  # None: a factors-only run
        x_r = self.x_r[idx] if self.x_r is not None else None
        return self.x_f[idx], x_n, self.has_news[idx], x_r


def decoupled_target(y: torch.Tensor, components: torch.Tensor, tau: float) -> torch.Tensor:
    """log q (B, K) of eq. 13: log softmax_k(-(y - y_hat_k)^2 / tau), from detached component predictions.

    Shapes: y (B,), components (B, K) -> (B, K)
    """
    import torch

    err2 = (y.unsqueeze(-1) - components.detach()) ** 2
    return torch.log_softmax(-err2 / tau, dim=-1)


def _mixture_losses(out: Any, y: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(conventional loss eq. 9, decoupled component loss eq. 12, KL gate loss eq. 14) of a mixture output."""
    import torch

    conventional = torch.mean((y - out.pred) ** 2)
    components = ((y.unsqueeze(-1) - out.components) ** 2).mean(0).sum()
    log_q = decoupled_target(y, out.components, tau)
    kl = (out.weights * (out.log_weights - log_q)).sum(-1).mean()
    return conventional, components, kl


def _loss(model: nn.Module, name: str, inputs: tuple[Any, ...], y: torch.Tensor, cfg: FusionConfig) -> torch.Tensor:
    import torch

    if name in MIXTURE_MODELS:
        conventional, components, kl = _mixture_losses(model(*inputs), y, cfg.model.tau)
        return conventional if name == "mixture_conventional" else components + cfg.model.kl_weight * kl
    return torch.mean((y - model(*inputs)) ** 2)


def _predict(model: nn.Module, name: str, inp: _Inputs, rows: np.ndarray, chunk: int = 2048) -> dict[str, np.ndarray]:
    import torch

    model.eval()
    preds: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for s in range(0, len(rows), chunk):
            r = rows[s:s + chunk]
            out = model(*inp(r, grad=False))
            if name in MIXTURE_MODELS:
                parts = {"pred": out.pred} | {f"comp_{k}": out.components[:, i] for i, k in enumerate(model.names)} \
                    | {f"weight_{k}": out.weights[:, i] for i, k in enumerate(model.names)}
            else:
                parts = {"pred": out}
            for key, v in parts.items():
                preds.setdefault(key, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in preds.items()}


def _ic(keys: pd.DataFrame, pred: np.ndarray, y: np.ndarray) -> float:
    frame = pd.DataFrame({"month": keys["month"].to_numpy(), "pred": pred, "ret": y})
    return float(information_coefficient(frame)["ic"].mean())


def _epoch_history(model: nn.Module, name: str, data: ModelData, inp: _Inputs, epoch: int) -> list[dict[str, Any]]:
    rows_out = []
    for split in ("train", "valid"):
        rows = data.rows[split]
        p = _predict(model, name, inp, rows)
        y, keys = data.y[rows], data.panel.keys.iloc[rows]
        series = {"output": p["pred"]} | {k[5:]: v for k, v in p.items() if k.startswith("comp_")}
        for s, v in series.items():
            rows_out.append({"epoch": epoch, "split": split, "series": s, "mse": float(np.mean((y - v) ** 2)),
                             "ic": _ic(keys, v, y) if split == "valid" else np.nan})
    return rows_out


def _flat_grads(params: list[Any]) -> np.ndarray:
    return np.concatenate([(p.grad if p.grad is not None else p.new_zeros(p.shape)).reshape(-1).numpy() for p in params])


def _component_groups(model: nn.Module) -> dict[str, list[Any]]:
    groups = {k: [p for p in c.parameters() if p.requires_grad] for k, c in model.components.items()}
    groups["gate"] = [p for p in model.gate.parameters() if p.requires_grad]
    return groups


def _grad_stats(model: nn.Module, inp: _Inputs, train_rows: np.ndarray, batches: list[np.ndarray],
                cfg: FusionConfig, epoch: int) -> list[dict[str, Any]]:
    """Per component and loss: spread of mini-batch gradients around the full training gradient."""
    import torch

    model.eval()
    groups = _component_groups(model)

    def grads(rows: np.ndarray, loss_name: str) -> dict[str, np.ndarray]:
        model.zero_grad(set_to_none=True)
        conv, comp, kl = _mixture_losses(model(*inp(rows, grad=False)), inp.y[torch.from_numpy(rows)], cfg.model.tau)
        (conv if loss_name == "conventional" else comp + cfg.model.kl_weight * kl).backward()
        return {k: _flat_grads(ps) for k, ps in groups.items()}

    out = []
    for loss_name in ("conventional", "decoupled"):
        full = grads(train_rows, loss_name)
        per_batch = [grads(rows, loss_name) for rows in batches]
        for k, mu in full.items():
            g = np.stack([b[k] for b in per_batch])  # (batches, params)
            spread = float(np.mean(np.sum((g - mu) ** 2, axis=1)))  # E_b ||g_b - mu||^2
            out.append({"epoch": epoch, "loss": loss_name, "component": k, "raw": spread / g.shape[1],
                        "relative": spread / max(float(mu @ mu), 1e-30),
                        "grad_norm": float(np.linalg.norm(g, axis=1).mean()), "n_params": int(g.shape[1])})
    model.zero_grad(set_to_none=True)
    return out


class _StepGrads:
    """Running first and second moments of the gradients actually used by the optimiser, per component."""

    def __init__(self, model: nn.Module) -> None:
        self.groups = _component_groups(model)
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.sum: dict[str, np.ndarray] = {}
        self.sq: dict[str, float] = {}

    def add(self) -> None:
        self.n += 1
        for k, ps in self.groups.items():
            g = _flat_grads(ps)
            self.sum[k] = self.sum.get(k, 0.0) + g
            self.sq[k] = self.sq.get(k, 0.0) + float(g @ g)

    def rows(self, epoch: int) -> list[dict[str, Any]]:
        out = []
        for k, total in self.sum.items():
            mean = total / self.n
            spread = (self.sq[k] / self.n - float(mean @ mean)) * self.n / max(self.n - 1, 1)
            out.append({"epoch": epoch, "loss": "trajectory", "component": k, "raw": spread / len(mean),
                        "relative": spread / max(float(mean @ mean), 1e-30),
                        "grad_norm": float(np.sqrt(self.sq[k] / self.n)), "n_params": len(mean)})
        self.reset()
        return out


def fit_model(
    name: str, data: ModelData, config: FusionConfig, use_ripple: bool = False, encoder: Any = None,
    progress: bool = False,
) -> FitResult:
    """Train ``name`` on the training months, select the epoch on validation, predict every row."""
    import torch

    if use_ripple and name == "factors_alone":
        raise KgfinError("factors_alone takes no ripple input")
    threads = torch.get_num_threads()
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    try:
        return _fit(name, data, config, use_ripple, encoder, progress)
    finally:
        torch.set_num_threads(threads)


def _fit(name: str, data: ModelData, cfg: FusionConfig, use_ripple: bool, encoder: Any, progress: bool) -> FitResult:
    import torch

    from kgfin.fusion.models import build_model

    tc = cfg.train
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    d_r = 2 if use_ripple else 0
    model = build_model(name, data.panel.x_f.shape[1], data.d_n, d_r, cfg.model.hidden, cfg.model.proj_dim,
                        tc.dropout, cfg.model.mixture_fusion)
    if data.x_n is None and encoder is None and name != "factors_alone":
        raise KgfinError(f"{name} needs news vectors (or a fine-tuned encoder); prepare_data got none")
    inp = _Inputs(data, use_ripple, encoder)
    groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": tc.lr}]
    if encoder is not None:
        groups.append({"params": encoder.trainable_parameters(), "lr": getattr(encoder, "lr", None) or cfg.lora.lr})
    opt = torch.optim.AdamW(groups, weight_decay=tc.weight_decay, foreach=True)
    train_rows = data.rows["train"]
    steps_per_epoch = math.ceil(len(train_rows) / tc.batch_size)
    total = steps_per_epoch * tc.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, (lambda s: max(0.0, 1.0 - s / total)) if tc.lr_schedule == "linear" else (lambda s: 1.0))
    gen = torch.Generator().manual_seed(cfg.seed)
    gv_rng = np.random.default_rng(cfg.seed)
    gv_batches = [gv_rng.choice(train_rows, size=min(tc.batch_size, len(train_rows)), replace=False)
                  for _ in range(tc.grad_var_batches)]
    is_mixture = name in MIXTURE_MODELS and tc.grad_var  # gradient statistics of the mixtures

    history = _epoch_history(model, name, data, inp, 0)
    grad_var = _grad_stats(model, inp, train_rows, gv_batches, cfg, 0) if is_mixture else []
    steps = _StepGrads(model) if is_mixture else None
    best_epoch, best_score, best_state = 0, -np.inf, copy.deepcopy(model.state_dict())
    if encoder is not None:
        encoder.snapshot()
    for epoch in tqdm(range(1, tc.epochs + 1), desc=name, unit="epoch", disable=not progress, leave=False):
        model.train()
        if encoder is not None:
            encoder.train()
        perm = train_rows[torch.randperm(len(train_rows), generator=gen).numpy()]
        for s in range(0, len(perm), tc.batch_size):
            rows = perm[s:s + tc.batch_size]
            loss = _loss(model, name, inp(rows), inp.y[torch.from_numpy(rows)], cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if steps is not None:
                steps.add()
            opt.step()
            sched.step()
        if encoder is not None:
            encoder.eval()
        history += _epoch_history(model, name, data, inp, epoch)
        if steps is not None:
            grad_var += steps.rows(epoch) + _grad_stats(model, inp, train_rows, gv_batches, cfg, epoch)
        valid = next(h for h in reversed(history) if h["split"] == "valid" and h["series"] == "output")
        score = {"last": epoch, "val_loss": -valid["mse"], "val_ic": valid["ic"]}[tc.select]
        if np.isfinite(score) and score > best_score:
            best_epoch, best_score, best_state = epoch, score, copy.deepcopy(model.state_dict())
            if encoder is not None:
                encoder.snapshot()
    model.load_state_dict(best_state)
    if encoder is not None:
        encoder.restore()
    all_rows = np.arange(len(data.panel))
    p = _predict(model, name, inp, all_rows)
    preds = data.panel.keys.copy()
    preds["split"] = data.split
    for k, v in p.items():
        preds[k] = v * data.y_scale if k == "pred" or k.startswith("comp_") else v
    n_params = sum(p.numel() for p in model.parameters())
    return FitResult(name=name, ripple=use_ripple, lora=encoder is not None, predictions=preds,
                     history=pd.DataFrame(history), grad_var=pd.DataFrame(grad_var), best_epoch=best_epoch,
                     seconds=time.perf_counter() - t0, n_params=int(n_params), model=model)
