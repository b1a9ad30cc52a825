"""Ripple propagation and the alignment reward: hand-computed cases and properties."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kgfin.align import (
    RewardConfig,
    RewardInputError,
    propagate,
    reward_from_impacts,
    ripple_reward,
)
from kgfin.config import ConfigError

MU = np.array([
    [0.0, 0.5, -1.0, 0.0],
    [0.0, 0.0, 0.2, 0.0],
    [0.3, 0.0, 0.0, 0.4],
    [0.0, 0.0, 0.0, 0.0],
])

# Magnitudes from 1e-6 to 1e3 (plus exact zeros below): returns-like values without
# subnormal corner cases; derandomised so that every run checks the same examples.
finite = st.one_of(st.floats(min_value=1e-6, max_value=1e3), st.floats(min_value=-1e3, max_value=-1e-6))


def vectors(n: int = 6) -> st.SearchStrategy[np.ndarray]:
    # Mix exact zeros in so that zero entries and all-zero vectors are exercised.
    return arrays(np.float64, n, elements=st.one_of(st.just(0.0), finite))


# ---------------------------------------------------------------- propagation


def test_propagate_one_hop_by_hand() -> None:
    y = np.array([0.1, 0.0, -0.2, 0.0])
    z = propagate(sp.csr_array(MU), y)
    # Z_j = Y_j + sum_i mu[i, j] * Y_i
    expected = [0.1 + (-0.2) * 0.3, 0.1 * 0.5, -0.2 + 0.1 * -1.0, -0.2 * 0.4]
    np.testing.assert_allclose(z, expected, atol=1e-15)


@pytest.mark.parametrize("hops", [0, 1, 2, 3])
@pytest.mark.parametrize("damping", [0.5, 1.0])
def test_propagate_multi_hop_matches_matrix_powers(hops: int, damping: float) -> None:
    y = np.array([0.1, -0.05, 0.0, 0.02])
    want = y.copy()
    for h in range(1, hops + 1):
        want = want + damping ** (h - 1) * y @ np.linalg.matrix_power(MU, h)
    np.testing.assert_allclose(propagate(MU, y, hops=hops, damping=damping), want, atol=1e-15)


def test_propagate_options() -> None:
    y = np.array([0.1, 0.0, -0.2, 0.0])
    with_diag = MU + np.diag([5.0, 5.0, 5.0, 5.0])
    np.testing.assert_allclose(propagate(with_diag, y), propagate(MU, y))  # the diagonal is ignored
    np.testing.assert_allclose(propagate(MU, y, direct=False), propagate(MU, y) - y)
    row = np.abs(MU).sum(axis=1, keepdims=True)
    by_row = np.divide(MU, row, out=np.zeros_like(MU), where=row > 0)
    np.testing.assert_allclose(propagate(MU, y, normalize="row"), y + y @ by_row)
    np.testing.assert_allclose(propagate(MU, y, normalize="max_row"), y + y @ (MU / row.max()))
    np.testing.assert_allclose(propagate(np.zeros((4, 4)), y, hops=3), y)


def test_propagate_batch_and_sparse_equal_rowwise() -> None:
    rng = np.random.default_rng(0)
    mu = sp.random_array((50, 50), density=0.05, random_state=1, format="csr")
    ys = rng.normal(size=(7, 50)) * (rng.random((7, 50)) < 0.1)
    batch = propagate(mu, ys, hops=2)
    assert batch.shape == (7, 50)
    for b in range(7):
        np.testing.assert_allclose(batch[b], propagate(mu.toarray(), ys[b], hops=2), atol=1e-14)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(vectors(4), vectors(4), finite, finite)
def test_propagate_is_linear(y1: np.ndarray, y2: np.ndarray, a: float, b: float) -> None:
    lhs = propagate(MU, a * y1 + b * y2, hops=2)
    rhs = a * propagate(MU, y1, hops=2) + b * propagate(MU, y2, hops=2)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9, atol=1e-6)


def test_propagate_bad_input() -> None:
    with pytest.raises(RewardInputError, match="shape"):
        propagate(MU, np.zeros(3))
    with pytest.raises(RewardInputError, match="NaN"):
        propagate(MU, np.array([np.nan, 0, 0, 0]))
    with pytest.raises(RewardInputError, match="non-finite"):
        propagate(np.full((4, 4), np.inf), np.zeros(4))
    with pytest.raises(ConfigError, match="hops"):
        propagate(MU, np.zeros(4), hops=-1)


# ---------------------------------------------------------------- reward


def test_reward_hand_computed() -> None:
    z = np.array([0.02, -0.01, 0.0])
    eps = np.array([0.01, -0.01, 0.005])
    cos = 0.0003 / (np.sqrt(0.0005) * 0.015)
    coverage = (0.01 + 0.01 + 0.0) / 0.025
    assert ripple_reward(z, eps) == pytest.approx(cos + 0.1 * coverage, abs=1e-12)
    assert ripple_reward(z, eps, lam=0.0) == pytest.approx(cos, abs=1e-12)
    assert ripple_reward(eps, eps) == pytest.approx(1.1)
    assert ripple_reward(-eps, eps) == pytest.approx(-0.9)
    # orthogonal with full coverage: only the coverage term
    assert ripple_reward(np.array([0.0, 3.0]), np.array([2.0, 0.0])) == pytest.approx(0.0)
    assert ripple_reward(np.array([1.0, 1.0]), np.array([2.0, -2.0]), lam=1.0) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("z", "eps"),
    [(np.zeros(3), np.array([0.1, -0.2, 0.0])), (np.array([0.1, -0.2, 0.0]), np.zeros(3)), (np.zeros(3), np.zeros(3))],
)
def test_reward_zero_vectors_defined(z: np.ndarray, eps: np.ndarray) -> None:
    with np.errstate(all="raise"):
        r = ripple_reward(z, eps)
    assert r == 0.0 and isinstance(r, float)


def test_reward_tiny_and_huge_values_are_scale_free() -> None:
    z = np.array([3.0, -1.0, 0.5])
    eps = np.array([1.0, -2.0, 0.25])
    base = ripple_reward(z, eps)
    for c in (1e-300, 1e-150, 1e150, 1e300):
        with np.errstate(all="raise"):
            assert ripple_reward(c * z, c * eps) == pytest.approx(base, abs=1e-12)
    with np.errstate(all="raise"):
        assert ripple_reward(1e300 * z, 1e-300 * eps) == pytest.approx(ripple_reward(1e6 * z, eps), abs=1e-12)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(vectors(), vectors(), st.floats(min_value=0, max_value=10))
def test_reward_range(z: np.ndarray, eps: np.ndarray, lam: float) -> None:
    r = ripple_reward(z, eps, lam=lam)
    assert np.isfinite(r)
    assert -1.0 <= r <= 1.0 + lam
    if not z.any() or not eps.any():
        assert r == 0.0


@settings(max_examples=200, deadline=None, derandomize=True)
@given(vectors(), vectors(), st.floats(min_value=1e-3, max_value=1e3))
def test_reward_scale_behaviour(z: np.ndarray, eps: np.ndarray, c: float) -> None:
    r = ripple_reward(z, eps)
    # the same positive scale on both leaves the reward unchanged
    assert ripple_reward(c * z, c * eps) == pytest.approx(r, abs=1e-9)
    # scaling Z alone: the cosine is unchanged, the coverage moves with |Z|
    assert ripple_reward(c * z, eps, lam=0.0) == pytest.approx(ripple_reward(z, eps, lam=0.0), abs=1e-9)
    lo, hi = sorted([1.0, c])
    assert ripple_reward(lo * z, eps) <= ripple_reward(hi * z, eps) + 1e-12
    # flipping the sign of Z flips the cosine only
    cos = ripple_reward(z, eps, lam=0.0)
    assert ripple_reward(-z, eps) == pytest.approx(r - 2 * cos, abs=1e-9)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(arrays(np.float64, (5, 6), elements=st.one_of(st.just(0.0), finite)), vectors())
def test_reward_batched_equals_rowwise(zs: np.ndarray, eps: np.ndarray) -> None:
    shared = ripple_reward(zs, eps)
    paired = ripple_reward(zs, np.tile(eps, (5, 1)))
    assert shared.shape == (5,)
    for b in range(5):
        assert shared[b] == pytest.approx(ripple_reward(zs[b], eps), abs=1e-12)
        assert paired[b] == pytest.approx(shared[b], abs=1e-12)


def test_reward_bad_input() -> None:
    with pytest.raises(RewardInputError, match="NaN"):
        ripple_reward(np.array([np.nan, 1.0]), np.ones(2))
    with pytest.raises(RewardInputError, match="do not match"):
        ripple_reward(np.ones(3), np.ones(2))
    with pytest.raises(RewardInputError, match="do not match"):
        ripple_reward(np.ones((2, 3)), np.ones((3, 3)))
    with pytest.raises(RewardInputError, match="lam"):
        ripple_reward(np.ones(2), np.ones(2), lam=-1)


def test_reward_from_impacts() -> None:
    y = np.array([0.1, 0.0, -0.2, 0.0])
    eps = np.array([0.02, 0.05, -0.3, -0.1])
    cfg = RewardConfig(lam=0.2, propagation={"hops": 2})
    want = ripple_reward(propagate(MU, y, hops=2), eps, lam=0.2)
    assert reward_from_impacts(MU, y, eps, cfg) == pytest.approx(want)
    assert reward_from_impacts(MU, y, eps, lam=0.2, propagation={"hops": 2}) == pytest.approx(want)
    # ripples that point the right way earn more than the direct impacts alone
    assert reward_from_impacts(MU, y, eps) > ripple_reward(y, eps)
