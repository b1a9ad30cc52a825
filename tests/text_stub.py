"""A deterministic stand-in for the news embedder, so tests need no encoder."""

from __future__ import annotations

import hashlib

import numpy as np


def hashed_embed(texts: list[str]) -> np.ndarray:
    """(len(texts), 64) bag of hashed lower-case words."""
    out = np.zeros((len(texts), 64))
    for i, t in enumerate(texts):
        for w in t.lower().split():
            out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 64] += 1.0
    return out
