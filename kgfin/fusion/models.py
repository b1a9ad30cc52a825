"""The eight return models (after Guo & Hauptmann, appendix C.3), one ``nn.Module`` each.

Inputs per stock-month (``B`` rows): factors ``x_f (B, F)``, the newsflow vector
``x_n (B, N)`` with ``has_news (B,)``, and optionally ripple ``x_r (B, R)`` (``R = 2``:
the scaled ripple score and its 0/1 presence flag). Rows without news see a learned
"no news" vector instead of ``x_n`` (:class:`NewsInput`), so a missing newsflow is
neither a zero vector nor a guess. Ripple is a third modality wherever news is used;
models built with ``d_r = 0`` ignore ``x_r``. Every prediction layer sees its input
through dropout. Outputs are predicted (scaled) next-month returns ``(B,)``.

This module imports torch at the top; import it only where torch is needed
(``kgfin.fusion`` itself stays light).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = [
    "AttentionPool", "FactorsAlone", "FININ", "FusionAttention", "FusionCombination", "FusionSummation", "Gate",
    "Mixture", "MixtureOutput", "NewsAlone", "NewsInput", "build_model",
]


class NewsInput(nn.Module):
    """``x_n`` where a row has news, a learned "no news" vector where it has none.

    Shapes: x_n (B, N), has_news (B,) bool -> (B, N)
    """

    def __init__(self, d_n: int) -> None:
        super().__init__()
        self.no_news = nn.Parameter(torch.zeros(d_n))

    def forward(self, x_n: Tensor, has_news: Tensor) -> Tensor:
        return torch.where(has_news.unsqueeze(-1), x_n, self.no_news.expand_as(x_n))


class AttentionPool(nn.Module):
    """Learned attention pooling of a headline's token states, trained with the return head.

    s_t = u . tanh(W h_t + b);   a = softmax_t(s_t) over real tokens (m_t = 1);   v = sum_t a_t h_t

    ``u`` starts at zero, so an untrained pool is the masked mean of the token states.

    Shapes: states (B, T, d), mask (B, T) 0/1 -> (B, d)
    """

    def __init__(self, d: int, hidden: int = 64) -> None:
        super().__init__()
        self.proj = nn.Linear(d, hidden)
        self.u = nn.Linear(hidden, 1, bias=False)
        nn.init.zeros_(self.u.weight)

    def weights(self, states: Tensor, mask: Tensor) -> Tensor:
        """(B, T) attention weights; zero at padding."""
        s = self.u(torch.tanh(self.proj(states))).squeeze(-1)  # (B, T)
        s = s.masked_fill(mask == 0, float("-inf"))
        a = torch.softmax(s, dim=-1)
        return torch.nan_to_num(a, nan=0.0)  # a text without tokens gets no weight anywhere

    def forward(self, states: Tensor, mask: Tensor) -> Tensor:
        return (self.weights(states, mask).unsqueeze(-1) * states).sum(1)  # (B, d)


def _cat(*parts: Tensor | None) -> Tensor:
    return torch.cat([p for p in parts if p is not None and p.shape[-1] > 0], dim=-1)


class FactorsAlone(nn.Module):
    """Two dense layers with a skip connection on the factors.

    h1 = relu(W1 x_f);  h2 = relu(W2 h1) + h1;  y = w . dropout(h2) + b

    Shapes: x_f (B, F) -> (B,)
    """

    def __init__(self, d_f: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.l1, self.l2 = nn.Linear(d_f, hidden), nn.Linear(hidden, hidden)
        self.drop, self.out = nn.Dropout(dropout), nn.Linear(hidden, 1)

    def forward(self, x_f: Tensor, x_n: Tensor | None = None, has_news: Tensor | None = None,
                x_r: Tensor | None = None) -> Tensor:
        h1 = torch.relu(self.l1(x_f))  # (B, H)
        h2 = torch.relu(self.l2(h1)) + h1  # (B, H)
        return self.out(self.drop(h2)).squeeze(-1)


class NewsAlone(nn.Module):
    """A linear head on the newsflow vector (and ripple, when given).

    y = w . dropout([n, x_r]) + b,   n = NewsInput(x_n)

    Shapes: x_n (B, N), has_news (B,), x_r (B, R) -> (B,)
    """

    def __init__(self, d_n: int, d_r: int, dropout: float) -> None:
        super().__init__()
        self.news, self.d_r = NewsInput(d_n), d_r
        self.drop, self.out = nn.Dropout(dropout), nn.Linear(d_n + d_r, 1)

    def forward(self, x_f: Tensor, x_n: Tensor, has_news: Tensor, x_r: Tensor | None = None) -> Tensor:
        return self.out(self.drop(_cat(self.news(x_n, has_news), x_r if self.d_r else None))).squeeze(-1)


class FININ(nn.Module):
    """Factors attend to the projected news (and ripple) by scaled dot product; the result is added to the factors.

    f = P_f x_f,  q = W_q x_f,  k_m = W_k^m x_m,  v_m = W_v^m x_m  for m in {news, ripple}
    a = softmax([q.k_m / sqrt(P)]_m, q.k_0 / sqrt(P))      k_0: learned "attend to nothing" key, v_0 = 0
    h = f + sum_m a_m v_m;   y = w . dropout(relu(W h)) + b

    With a single newsflow vector per stock-month, the null slot is what lets the
    factors scale the news contribution down (a softmax over one item would always be 1).

    Shapes: x_f (B, F), x_n (B, N), has_news (B,), x_r (B, R) -> (B,)
    """

    def __init__(self, d_f: int, d_n: int, d_r: int, proj: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.news = NewsInput(d_n)
        self.p_f, self.q = nn.Linear(d_f, proj), nn.Linear(d_f, proj)
        dims = [d_n] + ([d_r] if d_r else [])
        self.k = nn.ModuleList(nn.Linear(d, proj) for d in dims)
        self.v = nn.ModuleList(nn.Linear(d, proj) for d in dims)
        self.k0 = nn.Parameter(torch.zeros(proj))
        self.scale = 1.0 / math.sqrt(proj)
        self.dense = nn.Linear(proj, hidden)
        self.drop, self.out = nn.Dropout(dropout), nn.Linear(hidden, 1)

    def forward(self, x_f: Tensor, x_n: Tensor, has_news: Tensor, x_r: Tensor | None = None) -> Tensor:
        mods = [self.news(x_n, has_news)] + ([x_r] if len(self.k) > 1 else [])
        q = self.q(x_f)  # (B, P)
        keys = torch.stack([k(m) for k, m in zip(self.k, mods, strict=True)] + [self.k0.expand_as(q)], 1)  # (B, M+1, P)
        vals = torch.stack([v(m) for v, m in zip(self.v, mods, strict=True)] + [torch.zeros_like(q)], 1)  # (B, M+1, P)
        a = torch.softmax((keys @ q.unsqueeze(-1)).squeeze(-1) * self.scale, dim=-1)  # (B, M+1)
        h = self.p_f(x_f) + (a.unsqueeze(-1) * vals).sum(1)  # (B, P)
        return self.out(self.drop(torch.relu(self.dense(h)))).squeeze(-1)


class FusionCombination(nn.Module):
    """Concatenate the factors with a bottleneck of the news (half its width) and ripple.

    z = [x_f, relu(B n), x_r];   y = w . dropout(relu(W z)) + b

    Shapes: x_f (B, F), x_n (B, N), has_news (B,), x_r (B, R) -> (B,)
    """

    def __init__(self, d_f: int, d_n: int, d_r: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.news, self.d_r = NewsInput(d_n), d_r
        self.bottleneck = nn.Linear(d_n, max(1, d_n // 2))
        self.dense = nn.Linear(d_f + max(1, d_n // 2) + d_r, hidden)
        self.drop, self.out = nn.Dropout(dropout), nn.Linear(hidden, 1)

    def forward(self, x_f: Tensor, x_n: Tensor, has_news: Tensor, x_r: Tensor | None = None) -> Tensor:
        z = _cat(x_f, torch.relu(self.bottleneck(self.news(x_n, has_news))), x_r if self.d_r else None)  # (B, F+N/2+R)
        return self.out(self.drop(torch.relu(self.dense(z)))).squeeze(-1)


class FusionSummation(nn.Module):
    """Project each modality to a common width and add.

    h = P_f x_f + P_n n + P_r x_r;   y = w . dropout(relu(W h)) + b

    Shapes: x_f (B, F), x_n (B, N), has_news (B,), x_r (B, R) -> (B,)
    """

    def __init__(self, d_f: int, d_n: int, d_r: int, proj: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.news = NewsInput(d_n)
        self.p_f, self.p_n = nn.Linear(d_f, proj), nn.Linear(d_n, proj)
        self.p_r = nn.Linear(d_r, proj) if d_r else None
        self.dense = nn.Linear(proj, hidden)
        self.drop, self.out = nn.Dropout(dropout), nn.Linear(hidden, 1)

    def forward(self, x_f: Tensor, x_n: Tensor, has_news: Tensor, x_r: Tensor | None = None) -> Tensor:
        h = self.p_f(x_f) + self.p_n(self.news(x_n, has_news))  # (B, P)
        if self.p_r is not None:
            h = h + self.p_r(x_r)
        return self.out(self.drop(torch.relu(self.dense(h)))).squeeze(-1)


class FusionAttention(nn.Module):
    """Softmax weights over the projected modalities, per stock-month.

    e_m = tanh(P_m x_m);  s_m = u . e_m + c_m;  w = softmax(s);  h = sum_m w_m e_m
    y = w_o . dropout(relu(W h)) + b          (m over factors, news and, when given, ripple)

    Shapes: x_f (B, F), x_n (B, N), has_news (B,), x_r (B, R) -> (B,); ``last_weights`` (B, M)
    """

    def __init__(self, d_f: int, d_n: int, d_r: int, proj: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.news = NewsInput(d_n)
        self.proj = nn.ModuleList(nn.Linear(d, proj) for d in [d_f, d_n] + ([d_r] if d_r else []))
        self.u = nn.Linear(proj, 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(len(self.proj)))
        self.dense = nn.Linear(proj, hidden)
        self.drop, self.out = nn.Dropout(dropout), nn.Linear(hidden, 1)
        self.last_weights: Tensor | None = None

    def forward(self, x_f: Tensor, x_n: Tensor, has_news: Tensor, x_r: Tensor | None = None) -> Tensor:
        mods = [x_f, self.news(x_n, has_news)] + ([x_r] if len(self.proj) > 2 else [])
        e = torch.stack([torch.tanh(p(m)) for p, m in zip(self.proj, mods, strict=True)], 1)  # (B, M, P)
        w = torch.softmax(self.u(e).squeeze(-1) + self.bias, dim=-1)  # (B, M)
        self.last_weights = w.detach()
        h = (w.unsqueeze(-1) * e).sum(1)  # (B, P)
        return self.out(self.drop(torch.relu(self.dense(h)))).squeeze(-1)


class Gate(nn.Module):
    """The mixture's gating network p_phi(k | x) over K components, from all modalities.

    z = [x_f, relu(B n), x_r];  p = softmax(W2 dropout(relu(W1 z)))

    Shapes: x_f (B, F), x_n (B, N), has_news (B,), x_r (B, R) -> (B, K) probabilities
    """

    def __init__(self, d_f: int, d_n: int, d_r: int, hidden: int, k: int, dropout: float) -> None:
        super().__init__()
        self.news, self.d_r = NewsInput(d_n), d_r
        self.bottleneck = nn.Linear(d_n, max(1, d_n // 2))
        self.l1 = nn.Linear(d_f + max(1, d_n // 2) + d_r, hidden)
        self.drop, self.l2 = nn.Dropout(dropout), nn.Linear(hidden, k)

    def logits(self, x_f: Tensor, x_n: Tensor, has_news: Tensor, x_r: Tensor | None = None) -> Tensor:
        z = _cat(x_f, torch.relu(self.bottleneck(self.news(x_n, has_news))), x_r if self.d_r else None)
        return self.l2(self.drop(torch.relu(self.l1(z))))  # (B, K)

    def forward(self, x_f: Tensor, x_n: Tensor, has_news: Tensor, x_r: Tensor | None = None) -> Tensor:
        return torch.softmax(self.logits(x_f, x_n, has_news, x_r), dim=-1)


@dataclass
class MixtureOutput:
    """pred (B,) = sum_k weights * components; components (B, K); weights (B, K); log_weights (B, K)."""

    pred: Tensor
    components: Tensor
    weights: Tensor
    log_weights: Tensor


class Mixture(nn.Module):
    """Mixture of component predictors gated by p_phi (eq. 9 of the paper):

    y_hat = sum_k p_phi(k | x) y_hat_k(x)

    The components (factors alone, news alone, a fusion model) and the gate share no
    parameters, so each can be trained on its own loss (decoupled training, see
    :mod:`kgfin.fusion.train`).

    Shapes: x_f (B, F), x_n (B, N), has_news (B,), x_r (B, R) -> MixtureOutput
    """

    def __init__(self, components: dict[str, nn.Module], gate: Gate) -> None:
        super().__init__()
        self.components = nn.ModuleDict(components)
        self.gate = gate

    @property
    def names(self) -> list[str]:
        return list(self.components.keys())

    def forward(self, x_f: Tensor, x_n: Tensor, has_news: Tensor, x_r: Tensor | None = None) -> MixtureOutput:
        comps = torch.stack([c(x_f, x_n, has_news, x_r) for c in self.components.values()], -1)  # (B, K)
        logp = torch.log_softmax(self.gate.logits(x_f, x_n, has_news, x_r), dim=-1)  # (B, K)
        w = logp.exp()
        return MixtureOutput(pred=(w * comps).sum(-1), components=comps, weights=w, log_weights=logp)


def build_model(name: str, d_f: int, d_n: int, d_r: int, hidden: int, proj: int, dropout: float,
                mixture_fusion: str = "fusion_combination") -> nn.Module:
    """One of the eight models by name (see ``kgfin.fusion.config.MODEL_NAMES``)."""
    if name == "factors_alone":
        return FactorsAlone(d_f, hidden, dropout)
    if name == "news_alone":
        return NewsAlone(d_n, d_r, dropout)
    if name == "finin":
        return FININ(d_f, d_n, d_r, proj, hidden, dropout)
    if name == "fusion_combination":
        return FusionCombination(d_f, d_n, d_r, hidden, dropout)
    if name == "fusion_summation":
        return FusionSummation(d_f, d_n, d_r, proj, hidden, dropout)
    if name == "fusion_attention":
        return FusionAttention(d_f, d_n, d_r, proj, hidden, dropout)
    if name in ("mixture_conventional", "mixture_decoupled"):
        components = {
            "factors": FactorsAlone(d_f, hidden, dropout),
            "news": NewsAlone(d_n, d_r, dropout),
            "fusion": build_model(mixture_fusion, d_f, d_n, d_r, hidden, proj, dropout),
        }
        return Mixture(components, Gate(d_f, d_n, d_r, hidden, len(components), dropout))
    raise ValueError(f"unknown model {name!r}")
