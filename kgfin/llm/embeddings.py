"""Newsflow representations: texts through a language model, token states mean-pooled.

:class:`NewsEmbedder` runs any Hugging Face encoder or decoder named by a model spec
(:mod:`kgfin.llm`: the shipped ``all-minilm-l6-v2`` by default, ``tiny-random-llama``, a
local folder, a cached hub id) and pools the last layer's token states over the attention
mask::

    v(text) = sum_t mask_t * h_t / sum_t mask_t          (d,)

Vectors are cached on disk, one entry per text, keyed by ``sha256(spec + text)`` inside a
folder named after the spec and ``max_length`` (both change the vector) under
``kgfin.llm.cache_dir()/embeddings``; L2 normalisation, if asked for, is applied after
reading, so it shares the cache. A run embeds only the texts not cached yet, in batches,
with a progress bar. Each call writes its new vectors as one shard file (temporary name,
then rename), so concurrent or interrupted runs never leave a half-written shard.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field
from tqdm.auto import tqdm

from kgfin.config import KgfinConfig, resolve_config

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["EmbedConfig", "NewsEmbedder", "load_text_model", "mean_pool"]

log = logging.getLogger(__name__)


class EmbedConfig(KgfinConfig):
    """The language model that turns headlines into vectors (masked mean pooling of token states)."""

    model: str = Field("all-minilm-l6-v2", description="model spec (kgfin.llm): shipped MiniLM, a decoder, a local folder, a cached HF id")
    max_length: int = Field(64, ge=8, description="tokens per text (longer texts are truncated)")
    batch_size: int = Field(64, ge=1, description="texts per forward pass")
    normalize: bool = Field(False, description="L2-normalise each headline vector after pooling")
    cache: bool = Field(True, description="cache headline vectors on disk under kgfin.llm.cache_dir()/embeddings")


def load_text_model(spec: str, seed: int = 0) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A model returning token states, and its tokenizer (with a pad token), for an encoder or decoder spec."""
    from kgfin.llm import TINY_MODEL, load_causal_lm, load_encoder

    if spec == TINY_MODEL:
        model, tok = load_causal_lm(spec, seed=seed)
    else:
        model, tok = load_encoder(spec)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def mean_pool(model: Any, tokenizer: Any, texts: list[str], max_length: int) -> torch.Tensor:
    """(len(texts), d) masked mean of the last layer's token states (differentiable)."""
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_hidden_states=True)
    states = getattr(out, "last_hidden_state", None)
    if states is None:  # causal-LM heads return logits plus hidden states
        states = out.hidden_states[-1]
    mask = enc["attention_mask"].unsqueeze(-1).to(states.dtype)  # (B, T, 1)
    return (states * mask).sum(1) / mask.sum(1).clamp_min(1.0)  # (B, d)


def _slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(spec).name or spec)[:60]


class NewsEmbedder:
    """Cached, batched masked-mean-pooled text vectors from a model spec (see the module doc)."""

    def __init__(self, config: EmbedConfig | None = None, cache_root: str | Path | None = None,
                 **overrides: Any) -> None:
        from kgfin.llm import cache_dir

        self.config = resolve_config(EmbedConfig, config, overrides)
        root = Path(cache_root) if cache_root is not None else cache_dir() / "embeddings"
        tag = hashlib.sha256(f"{self.config.model}\0{self.config.max_length}".encode()).hexdigest()[:10]
        self.cache_path = root / f"{_slug(self.config.model)}-{tag}"
        self._model: Any = None
        self._tok: Any = None
        self._cache: dict[bytes, np.ndarray] | None = None
        self.computed = 0  # texts run through the model by this embedder
        self.compute_seconds = 0.0  # time spent in the model (loading excluded)

    def key(self, text: str) -> bytes:
        """Cache key of a text: sha256 of the model spec and the text."""
        return hashlib.sha256(f"{self.config.model}\0{text}".encode()).digest()

    def _load_cache(self) -> dict[bytes, np.ndarray]:
        if self._cache is None:
            self._cache = {}
            if self.config.cache and self.cache_path.is_dir():
                for shard in sorted(self.cache_path.glob("shard-*.npz")):
                    with np.load(shard) as z:
                        for k, v in zip(z["keys"], z["vecs"], strict=True):
                            self._cache[k.tobytes()] = v
        return self._cache

    def _write_shard(self, keys: list[bytes], vecs: np.ndarray) -> None:
        self.cache_path.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(b"".join(keys)).hexdigest()[:16]
        tmp = self.cache_path / f".shard-{name}.{os.getpid()}.npz"
        keys_u8 = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)  # raw digests
        np.savez(tmp, keys=keys_u8, vecs=vecs.astype(np.float32))
        os.replace(tmp, self.cache_path / f"shard-{name}.npz")

    def model(self) -> tuple[Any, Any]:
        """The language model and tokenizer (loaded on first use)."""
        if self._model is None:
            self._model, self._tok = load_text_model(self.config.model)
        return self._model, self._tok

    def embed(self, texts: list[str], progress: bool = True) -> np.ndarray:
        """(len(texts), d) float32 vectors; cached texts are read, the rest computed and cached."""
        import torch

        cache = self._load_cache()
        keys = [self.key(t) for t in texts]
        # distinct uncached texts, longest first (batches of similar length waste little on padding)
        todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cache}.items(),
                      key=lambda kt: (-len(kt[1]), kt[0]))
        if todo:
            model, tok = self.model()
            bs = self.config.batch_size
            new: list[np.ndarray] = []
            t0 = time.perf_counter()
            with torch.inference_mode():
                for i in tqdm(range(0, len(todo), bs), desc=f"embedding news ({self.config.model})",
                              unit="batch", disable=not progress):
                    batch = [t for _, t in todo[i:i + bs]]
                    new.append(mean_pool(model, tok, batch, self.config.max_length).float().numpy())
            self.compute_seconds += time.perf_counter() - t0
            self.computed += len(todo)
            vecs = np.concatenate(new)
            for (k, _), v in zip(todo, vecs, strict=True):
                cache[k] = v
            if self.config.cache:
                self._write_shard([k for k, _ in todo], vecs)
            log.info("embedded %d new texts in %.1f s (%d cached)", len(todo), self.compute_seconds,
                     len(texts) - len(todo))
        if not texts:
            return np.zeros((0, self.dim()), dtype=np.float32)
        out = np.stack([cache[k] for k in keys]).astype(np.float32)
        if self.config.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def dim(self) -> int:
        """Vector width (from the cache if possible, else from the model config)."""
        cache = self._load_cache()
        if cache:
            return len(next(iter(cache.values())))
        model, _ = self.model()
        return int(model.config.hidden_size)
