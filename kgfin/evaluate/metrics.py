"""Ripple-only metrics of one event: a method's scores over the event's candidates against what happened.

All functions take (C,) arrays over one event's candidates (the focal firm is never among them):

* :func:`rank_ic`: Spearman correlation of scores with the realised moves (the headline metric);
* :func:`top_k`: precision@k, recall@k and NDCG@k of the relevant firms when candidates are ranked by
  |score|, tie-aware (a tie group straddling the cut counts by its expected share, as if ties were broken
  at random; McSherry and Najork 2008), so a method that names nothing gets the random-order value, not
  whatever the candidate order happens to be;
* :func:`sign_accuracy`: share of the firms a method names (score != 0) whose sign is right;
* :func:`planted_corr`: Pearson correlation of the scores with the planted shocks (synthetic market).

A constant score vector (a method that names no candidate, a refusal) carries no ranking: its rank IC
and correlation are 0 (not NaN), and the caller counts such events.
"""

from __future__ import annotations

import numpy as np

from kgfin.align.reward import candidate_rank_ic

__all__ = ["planted_corr", "rank_ic", "realised_relevance", "sign_accuracy", "top_k"]


def _constant(x: np.ndarray) -> bool:
    return x.size == 0 or bool(np.all(x == x[0]))


def rank_ic(scores: np.ndarray, moves: np.ndarray) -> float:
    """Spearman rank correlation of ``scores`` with ``moves`` (ties get average ranks; the alignment reward's
    :func:`~kgfin.align.reward.candidate_rank_ic`, so training and evaluation rank alike).

    0 when the scores are constant (no ranking), NaN when fewer than 3 candidates or constant moves.

    >>> round(rank_ic(np.array([3.0, 2.0, 1.0, 0.0]), np.array([0.4, 0.1, 0.2, -0.3])), 6)
    0.8
    """
    s, m = np.asarray(scores, dtype=float), np.asarray(moves, dtype=float)
    if s.size < 3 or _constant(m):
        return float("nan")
    return candidate_rank_ic(s, m)


def top_k(scores: np.ndarray, gains: np.ndarray, k: int) -> tuple[float, float, float]:
    """(precision@k, recall@k, NDCG@k) of the candidates with ``gains > 0``, ranked by |score|, ties at random.

    ``gains``: (C,) non-negative relevance (|planted shock| of the affected firms, 0 for the others): precision
    and recall count the firms with a positive gain, NDCG weighs them by gain with discount 1 / log2(rank + 1).
    k is capped at C. Recall and NDCG are NaN when no candidate is relevant.

    >>> top_k(np.array([0.9, 0.5, 0.0, 0.0]), np.array([1.0, 0.0, 1.0, 0.0]), 2)
    (0.5, 0.5, 0.6131471927654584)
    """
    s, g = np.abs(np.asarray(scores, dtype=float)), np.asarray(gains, dtype=float)
    k = min(k, s.size)
    rel = g > 0
    order = np.argsort(-s, kind="stable")
    vals = s[order]
    starts = np.flatnonzero(np.r_[True, vals[1:] != vals[:-1]])
    ends = np.r_[starts[1:], vals.size]
    discount = 1.0 / np.log2(np.arange(s.size) + 2.0)
    hits = dcg = 0.0
    for lo, hi in zip(starts, ends, strict=True):
        if lo >= k:
            break
        members = order[lo:hi]
        inside = min(hi, k) - lo  # positions of this tie group above the cut
        hits += inside / (hi - lo) * rel[members].sum()
        dcg += discount[lo:lo + inside].sum() / (hi - lo) * g[members].sum()
    ideal = float((np.sort(g)[::-1][:k] * discount[:k]).sum())
    n_rel = int(rel.sum())
    return (float(hits / k) if k else float("nan"), float(hits / n_rel) if n_rel else float("nan"),
            float(dcg / ideal) if ideal > 0 else float("nan"))


def realised_relevance(moves: np.ndarray, k: int) -> np.ndarray:
    """Gains for data without a planted truth: |move| of the ``k`` candidates that moved most, 0 for the rest.

    >>> realised_relevance(np.array([0.01, -0.05, 0.02]), 2).tolist()
    [0.0, 0.05, 0.02]
    """
    m = np.abs(np.asarray(moves, dtype=float))
    out = np.zeros_like(m)
    top = np.argsort(-m, kind="stable")[:k]
    out[top] = m[top]
    return out


def sign_accuracy(scores: np.ndarray, target: np.ndarray) -> float:
    """Share of the named candidates (score != 0) with a nonzero ``target`` whose score has the target's sign;
    NaN when there are none.

    >>> sign_accuracy(np.array([1.0, -2.0, 0.0, 3.0]), np.array([0.2, 0.1, -0.4, 0.0]))
    0.5
    """
    s, t = np.asarray(scores, dtype=float), np.asarray(target, dtype=float)
    named = (s != 0) & (t != 0)
    return float(np.mean(np.sign(s[named]) == np.sign(t[named]))) if named.any() else float("nan")


def planted_corr(scores: np.ndarray, shock: np.ndarray) -> float:
    """Pearson correlation of ``scores`` with the planted shocks: 0 for constant scores, NaN when no candidate
    (or every candidate alike) was hit.

    >>> round(planted_corr(np.array([1.0, 0.0, 0.0]), np.array([0.02, 0.0, 0.01])), 4)
    0.866
    """
    s, p = np.asarray(scores, dtype=float), np.asarray(shock, dtype=float)
    if s.size < 2 or _constant(p):
        return float("nan")
    if _constant(s):
        return 0.0
    return float(np.corrcoef(s, p)[0, 1])
