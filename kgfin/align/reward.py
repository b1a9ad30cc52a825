"""Ripple propagation over the month's interaction graph and the market-alignment reward.

Pure numpy / scipy: the PPO, GRPO and RLOO paths call these as plain functions.

Propagation (``propagate``), with ``M`` the (normalised) signed interaction matrix of the
month, indexed ``[source i, target j]``, and ``Y`` the predicted direct impacts::

    Z = direct * Y + sum_{h=1..hops} damping**(h-1) * Y M^h,   i.e. for one hop
    Z_j = Y_j + sum_i mu(c_i, c_j) * Y_i

Reward (``ripple_reward``), with ``eps`` the realised residual returns::

    R(Z, eps) = cos(Z, eps) + lam * sum_j min(|Z_j|, |eps_j|) / ||eps||_1

``cos`` is 0 when either vector is zero and the coverage term is 0 when ``eps`` is zero,
so R is always finite and lies in [-1, 1 + lam]. This is the paper's reward (``kind: paper``). It is
blind to an answer's size (the cosine ignores scale, coverage only grows with it), so a policy trained
on it answers at +-10.

Candidate rewards (``kind``: ``candidate_mse``, ``rank_ic``, ``sized_ripple``) are taken on the event's
candidate set C (:mod:`kgfin.graph.candidates`: the focal firm's neighbours plus random others, the
rows the ripple evaluation v2 scores) against the candidates' realised residual moves ``e_C`` over the
outcome window::

    candidate_mse(Z, e) = max(-1, 1 - ||Z_C - e_C||^2 / ||e_C||^2)    pays for size: 1 = exact, 0 = silence
    rank_ic(Z, e)       = Spearman(Z_R, e_R)                          R = candidates the news does not name
    sized_ripple        = 0.5 * candidate_mse + 0.5 * rank_ic         (the default)

``rank_ic`` is 0 for a constant ``Z_R`` (no ranking) and for fewer than 3 candidates.

Shapes: N companies in the snapshot's order; B predictions in a batch.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from kgfin.config import KgfinConfig, resolve_config
from kgfin.errors import KgfinError

__all__ = [
    "REWARD_KINDS", "PropagationConfig", "RewardConfig", "RewardInputError", "RewardKind", "candidate_mse",
    "candidate_rank_ic", "propagate", "reward_from_impacts", "ripple_reward", "sized_ripple",
]

RewardKind = Literal["paper", "candidate_mse", "rank_ic", "sized_ripple"]
REWARD_KINDS: tuple[str, ...] = ("paper", "candidate_mse", "rank_ic", "sized_ripple")


class RewardInputError(KgfinError, ValueError):
    """Inputs to propagation or the reward with the wrong shape or non-finite values."""


class PropagationConfig(KgfinConfig):
    """How predicted direct impacts spread over the interaction graph."""

    hops: int = Field(1, ge=0, description="number of graph hops (0: direct impacts only)")
    damping: float = Field(0.5, ge=0, description="weight of hop h is damping**(h-1); matters from 2 hops on")
    normalize: Literal["none", "row", "max_row"] = Field(
        "none",
        description="none: mu as given; row: each source's row divided by its absolute sum; "
        "max_row: mu divided by the largest absolute row sum (keeps relative strengths)",
    )
    direct: bool = Field(True, description="include the direct impacts Y themselves in Z")


class RewardConfig(KgfinConfig):
    """The alignment reward: which one, its propagation settings and the paper reward's coverage weight."""

    kind: RewardKind = Field(
        "sized_ripple",
        description="paper: cos + lam * coverage over every company on the event day (blind to size); candidate_mse, "
                    "rank_ic or sized_ripple (their mean): on the event's candidate set against the outcome window's "
                    "residual moves (module docstring; eval/reward_check.py)")
    lam: float = Field(0.1, ge=0, description="kind paper: weight of the magnitude-coverage term")
    propagation: PropagationConfig = Field(
        default_factory=lambda: PropagationConfig(normalize="max_row"),
        description="max_row by default: a hub's row of mu sums to ~25-28 on the synthetic market, so unnormalised "
                    "its neighbours outweigh every named impact and the reward cannot pay for knowing neighbours "
                    "(eval/ripple_headroom.py)")


def _as_matrix(mu: Any, n: int) -> sp.csr_array:
    m = sp.csr_array(mu, dtype=float)
    if m.shape != (n, n):
        raise RewardInputError(f"mu has shape {m.shape}; expected ({n}, {n}) to match the impacts")
    if not np.isfinite(m.data).all():
        raise RewardInputError("mu has non-finite entries")
    m = (m - sp.diags_array(m.diagonal())).tocsr()  # the direct effect is Y itself
    m.eliminate_zeros()
    return m


def _normalized(m: sp.csr_array, how: str) -> sp.csr_array:
    if how == "none":
        return m
    row_abs = np.asarray(abs(m).sum(axis=1), dtype=float).ravel()  # (N,)
    if how == "row":
        scale = np.divide(1.0, row_abs, out=np.zeros_like(row_abs), where=row_abs > 0)
        return (sp.diags_array(scale) @ m).tocsr()
    top = row_abs.max(initial=0.0)
    return m / top if top > 0 else m


def _finite(name: str, a: Any) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    if arr.ndim not in (1, 2):
        raise RewardInputError(f"{name} must be a vector (N,) or a batch (B, N), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise RewardInputError(f"{name} has NaN or infinite entries (drop or zero missing values first)")
    return arr


def propagate(mu: Any, y: Any, config: PropagationConfig | None = None, **overrides: Any) -> np.ndarray:
    """Ripple magnitudes ``Z`` from predicted direct impacts ``Y`` over ``mu``.

    ``mu``: (N, N) signed interaction measure, ``[source, target]``, scipy sparse or dense;
    its diagonal is ignored. ``y``: (N,) or (B, N) direct impacts (0 for companies the
    prediction does not name). Returns ``Z`` with the shape of ``y``. Settings are
    :class:`PropagationConfig` fields (``hops``, ``damping``, ``normalize``, ``direct``).

    >>> mu = sp.csr_matrix(np.array([[0.0, 0.5, -1.0], [0.0, 0.0, 0.2], [0.0, 0.0, 0.0]]))
    >>> propagate(mu, np.array([0.1, 0.0, 0.0])).round(4).tolist()
    [0.1, 0.05, -0.1]
    >>> propagate(mu, np.array([0.1, 0.0, 0.0]), hops=2, damping=0.5).round(4).tolist()
    [0.1, 0.05, -0.095]
    """
    cfg = resolve_config(PropagationConfig, config, overrides)
    yy = _finite("Y", y)
    m = _normalized(_as_matrix(mu, yy.shape[-1]), cfg.normalize)
    mt = m.T.tocsr()  # (Y M)^T = M^T Y^T
    wave = yy.T  # (N,) or (N, B)
    z = yy.T.copy() if cfg.direct else np.zeros_like(wave)
    for h in range(cfg.hops):
        wave = mt @ wave
        z += cfg.damping**h * wave
    return np.ascontiguousarray(z.T)


def ripple_reward(z: Any, eps: Any, lam: float = 0.1) -> float | np.ndarray:
    """``cos(Z, eps) + lam * sum_j min(|Z_j|, |eps_j|) / ||eps||_1``, in [-1, 1 + lam].

    ``z`` and ``eps``: (N,) vectors, or (B, N) batches (a single (N,) ``eps`` is shared by
    every row of ``z``). Returns a float for two vectors, else a (B,) array. A zero ``Z`` or
    ``eps`` has cosine 0; a zero ``eps`` has coverage 0. Scaling both ``Z`` and ``eps`` by
    the same positive factor leaves the reward unchanged; scaling ``Z`` alone leaves the
    cosine unchanged and moves the coverage term monotonically (up with larger ``|Z|``,
    until ``|Z_j| >= |eps_j|`` everywhere).

    >>> ripple_reward(np.array([1.0, 0.0]), np.array([1.0, 0.0]))
    1.1
    >>> round(ripple_reward(np.array([0.02, -0.01, 0.0]), np.array([0.01, -0.01, 0.005]), lam=0.5), 6)
    1.294427
    >>> ripple_reward(np.zeros(3), np.array([0.01, -0.02, 0.0]))
    0.0
    >>> ripple_reward(np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([2.0, 0.0])).tolist()
    [1.05, -0.95]
    """
    zz, ee = _finite("Z", z), _finite("eps", eps)
    if zz.shape[-1] != ee.shape[-1] or (zz.ndim == ee.ndim == 2 and zz.shape != ee.shape):
        raise RewardInputError(f"Z {zz.shape} and eps {ee.shape} do not match")
    if lam < 0 or not np.isfinite(lam):
        raise RewardInputError(f"lam must be finite and >= 0, got {lam}")
    single = zz.ndim == ee.ndim == 1
    zz, ee = np.broadcast_arrays(np.atleast_2d(zz), np.atleast_2d(ee))
    # Both terms on rows rescaled by their largest entry: exact, and free of under- or overflow.
    z_top = abs(zz).max(axis=1, keepdims=True)
    e_top = abs(ee).max(axis=1, keepdims=True)
    zs = zz / np.where(z_top > 0, z_top, 1.0)
    es = ee / np.where(e_top > 0, e_top, 1.0)
    norms = np.linalg.norm(zs, axis=1) * np.linalg.norm(es, axis=1)
    dots = (zs * es).sum(axis=1)
    cos = np.clip(np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0), -1.0, 1.0)
    with np.errstate(over="ignore"):
        z_in_e = abs(zz) / np.where(e_top > 0, e_top, 1.0)  # |Z| in units of max|eps| (may be inf)
    l1 = abs(es).sum(axis=1)
    covered = np.minimum(z_in_e, abs(es)).sum(axis=1)
    coverage = np.clip(np.divide(covered, l1, out=np.zeros_like(l1), where=l1 > 0), 0.0, 1.0)
    reward = cos + lam * coverage
    return float(reward[0]) if single else reward


def reward_from_impacts(
    mu: Any, y: Any, eps: Any, config: RewardConfig | None = None, **overrides: Any,
) -> float | np.ndarray:
    """``ripple_reward(propagate(mu, Y), eps)`` with the settings of a :class:`RewardConfig`."""
    cfg = resolve_config(RewardConfig, config, overrides)
    return ripple_reward(propagate(mu, y, cfg.propagation), eps, lam=cfg.lam)


def candidate_mse(z: Any, e: Any) -> float:
    """``max(-1, 1 - ||z - e||^2 / ||e||^2)`` over one event's candidates: 1 for the realised moves exactly, 0 for
    silence (z = 0), -1 at worst; 0 when ``e`` is zero.

    >>> candidate_mse(np.array([0.01, -0.02]), np.array([0.01, -0.02]))
    1.0
    >>> candidate_mse(np.zeros(2), np.array([0.01, -0.02]))
    0.0
    >>> round(candidate_mse(np.array([0.005, -0.01]), np.array([0.01, -0.02])), 6)
    0.75
    >>> candidate_mse(np.array([1.0, -1.0]), np.array([0.01, -0.02]))
    -1.0
    """
    zz, ee = _finite("Z", z), _finite("e", e)
    if zz.shape != ee.shape or zz.ndim != 1:
        raise RewardInputError(f"Z {zz.shape} and e {ee.shape} must be vectors of the same length")
    denom = float(ee @ ee)
    if denom == 0.0:
        return 0.0
    return float(max(-1.0, 1.0 - float((zz - ee) @ (zz - ee)) / denom))


def candidate_rank_ic(z: Any, e: Any) -> float:
    """Spearman correlation of ``z`` with ``e`` (average ranks for ties); 0 for a constant ``z`` or ``e`` or fewer
    than 3 entries (no ranking to reward).

    >>> round(candidate_rank_ic(np.array([3.0, 2.0, 1.0, 0.0]), np.array([0.4, 0.1, 0.2, -0.3])), 6)
    0.8
    >>> candidate_rank_ic(np.zeros(4), np.array([0.4, 0.1, 0.2, -0.3]))
    0.0
    """
    from scipy.stats import rankdata

    zz, ee = _finite("Z", z), _finite("e", e)
    if zz.shape != ee.shape or zz.ndim != 1:
        raise RewardInputError(f"Z {zz.shape} and e {ee.shape} must be vectors of the same length")
    if zz.size < 3 or np.ptp(zz) == 0 or np.ptp(ee) == 0:
        return 0.0
    rz, re = rankdata(zz), rankdata(ee)
    rz, re = rz - rz.mean(), re - re.mean()
    return float(np.clip(rz @ re / np.sqrt((rz @ rz) * (re @ re)), -1.0, 1.0))


def sized_ripple(z: Any, e: Any, ripple: Any) -> float:
    """``0.5 * candidate_mse(z, e) + 0.5 * candidate_rank_ic(z[ripple], e[ripple])``: size on every candidate, ranking
    on the ripple candidates (``ripple``: (C,) bool, those the news does not name).

    >>> z = np.array([0.02, 0.01, 0.0, -0.01]); e = np.array([0.02, 0.01, 0.0, -0.01])
    >>> sized_ripple(z, e, np.array([False, True, True, True]))
    1.0
    """
    mask = np.asarray(ripple, dtype=bool)
    zz, ee = np.asarray(z, dtype=float), np.asarray(e, dtype=float)
    return 0.5 * candidate_mse(zz, ee) + 0.5 * candidate_rank_ic(zz[mask], ee[mask])
