"""Newsflow representations: texts through a language model, token states pooled into one vector.

:class:`NewsEmbedder` runs any Hugging Face encoder or decoder named by a model spec
(:mod:`kgfin.llm`: the shipped ``all-minilm-l6-v2`` by default, the shipped decoder
``smollm2-135m-instruct``, ``tiny-random-llama``, a local folder, a cached hub id) and turns
the token states ``h_t`` of one layer (``layer``: the ``last`` block's output or the
``middle`` one) into one vector per text (``pooling``, :func:`pool_states`)::

    mean:  v = sum_t m_t h_t / sum_t m_t            (d,)   m: the attention mask
    last:  v = h_t at the last real token            (a decoder's summary of the text)
    cls:   v = h_t at the first real token           (an encoder's [CLS])

``attention`` pooling is learned with the return head (:mod:`kgfin.fusion.pooling`): its
vectors cannot be cached, so the embedder gives token states (:meth:`NewsEmbedder.token_states`).
The model specs ``vader`` and ``loughran-mcdonald`` are dictionary sentiment scorers
(:mod:`kgfin.llm.sentiment`): their per-headline feature vectors are cached and used exactly
like embeddings (pooling and layer do not apply to them).

Vectors are cached on disk, one entry per text, keyed by ``sha256(spec + representation + text)``
inside a folder named after the spec, ``max_length`` and the representation (pooling and layer;
the default ``mean`` of the ``last`` layer keeps the key it had before these options existed)
under ``kgfin.llm.cache_dir()/embeddings``; L2 normalisation, if asked for, is applied after
reading, so it shares the cache. A run embeds only the texts not cached yet, in batches, with a
progress bar; :func:`embed_together` fills several representations of one model in one pass.
Each call writes its new vectors as one shard file (temporary name, then rename), so concurrent
or interrupted runs never leave a half-written shard.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, model_validator
from tqdm.auto import tqdm

from kgfin.config import KgfinConfig, resolve_config
from kgfin.errors import KgfinError
from kgfin.llm.sentiment import is_sentiment_model, sentiment_features

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "FIXED_POOLINGS", "POOLINGS", "EmbedConfig", "NewsEmbedder", "TokenStates", "embed_together", "encode",
    "is_decoder", "layer_index", "load_text_model", "mean_pool", "pool_states", "token_states",
]

log = logging.getLogger(__name__)

FIXED_POOLINGS = ("mean", "last", "cls")  # computed once and cached
POOLINGS = (*FIXED_POOLINGS, "attention")  # attention: learned with the return head


class EmbedConfig(KgfinConfig):
    """The language model that turns headlines into vectors: model, token pooling and layer."""

    model: str = Field("all-minilm-l6-v2", description="model spec (kgfin.llm): shipped MiniLM, a decoder, a local "
                                                       "folder, a cached HF id; or a sentiment scorer: vader, "
                                                       "loughran-mcdonald")
    pooling: Literal["mean", "last", "cls", "attention"] = Field(
        "mean", description="token states -> one vector per headline: mean over tokens, last real token (a "
                            "decoder's summary), cls (first token, an encoder's [CLS]), attention (learned with the "
                            "return head, not cached)")
    layer: Literal["last", "middle"] = Field("last", description="which layer's token states: the last block's "
                                                                 "output or the middle block's")
    max_length: int = Field(64, ge=8, description="tokens per text (longer texts are truncated)")
    batch_size: int = Field(64, ge=1, description="texts per forward pass")
    normalize: bool = Field(False, description="L2-normalise each headline vector after pooling")
    cache: bool = Field(True, description="cache headline vectors on disk under kgfin.llm.cache_dir()/embeddings")

    @model_validator(mode="after")
    def _check(self) -> EmbedConfig:
        if is_sentiment_model(self.model) and self.pooling == "attention":
            raise ValueError(f"{self.model} is a sentiment scorer: it has no token states to pool by attention "
                             "(use pooling: mean)")
        return self

    @property
    def representation(self) -> str:
        """``pooling/layer`` (``-`` for a sentiment scorer)."""
        return "-" if is_sentiment_model(self.model) else f"{self.pooling}/{self.layer}"


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


def is_decoder(model: Any) -> bool:
    """True for a causal (decoder-only) language model: its summary token is the last, not the first."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = [type(base).__name__, *(getattr(base.config, "architectures", None) or [])]
    return any(n.endswith("ForCausalLM") for n in names)


def _backbone(model: Any) -> Any:
    """The transformer without a language-model head (a causal LM's logits are not needed for states)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.model if type(base).__name__.endswith("ForCausalLM") and hasattr(base, "model") else base


def layer_index(n_layers: int, layer: str) -> int:
    """Index into ``hidden_states`` (0 = the embeddings, ``n_layers`` = the last block's output).

    >>> layer_index(6, "last"), layer_index(6, "middle"), layer_index(30, "middle")
    (6, 3, 15)
    """
    if layer == "last":
        return n_layers
    if layer == "middle":
        return n_layers // 2
    raise ValueError(f"layer must be 'last' or 'middle', not {layer!r}")


def pool_states(states: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per text from its token states, ignoring padding (left or right).

    * ``mean``: ``sum_t m_t h_t / sum_t m_t``;
    * ``last``: ``h_t`` at the last position with ``m_t = 1`` (a decoder's summary of the text);
    * ``cls``: ``h_t`` at the first position with ``m_t = 1`` (an encoder's ``[CLS]``).

    Shapes: states (B, T, d), mask (B, T) 0/1 -> (B, d)
    """
    import torch

    m = mask.to(states.dtype)
    if pooling == "mean":
        return (states * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp_min(1.0)
    t = states.shape[1]
    if pooling == "last":
        idx = t - 1 - torch.argmax(m.flip(1), dim=1)  # (B,) last real token, whatever the padding side
    elif pooling == "cls":
        idx = torch.argmax(m, dim=1)  # (B,) first real token
    else:
        raise ValueError(f"pooling must be one of {list(FIXED_POOLINGS)}, not {pooling!r} "
                         "(attention pooling is learned with the return head: kgfin.fusion.pooling)")
    return states[torch.arange(states.shape[0]), idx]


def token_states(model: Any, tokenizer: Any, texts: list[str], max_length: int,
                 layers: tuple[str, ...] = ("last",)) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Token states of ``texts`` at each of ``layers`` (differentiable), and the attention mask.

    Shapes: -> {layer: (B, T, d)}, mask (B, T)
    """
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    out = _backbone(model)(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_hidden_states=True)
    hidden = out.hidden_states  # (n_layers + 1) x (B, T, d)
    return {layer: hidden[layer_index(len(hidden) - 1, layer)] for layer in layers}, enc["attention_mask"]


def encode(model: Any, tokenizer: Any, texts: list[str], max_length: int, pooling: str = "mean",
           layer: str = "last") -> torch.Tensor:
    """(len(texts), d) pooled token states of one layer (differentiable; see :func:`pool_states`)."""
    states, mask = token_states(model, tokenizer, texts, max_length, (layer,))
    return pool_states(states[layer], mask, pooling)


def mean_pool(model: Any, tokenizer: Any, texts: list[str], max_length: int) -> torch.Tensor:
    """(len(texts), d) masked mean of the last layer's token states (differentiable)."""
    return encode(model, tokenizer, texts, max_length, "mean", "last")


def _slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(spec).name or spec)[:60]


@dataclass
class TokenStates:
    """Frozen token states of a list of texts, padded to one length (for learned pooling)."""

    states: np.ndarray  # (n, T, d) float32, zeros at padding
    mask: np.ndarray  # (n, T) int64 attention mask


class NewsEmbedder:
    """Cached, batched pooled text vectors (or sentiment features) from a model spec (see the module doc)."""

    def __init__(self, config: EmbedConfig | None = None, cache_root: str | Path | None = None,
                 **overrides: Any) -> None:
        from kgfin.llm import cache_dir

        self.config = resolve_config(EmbedConfig, config, overrides)
        root = Path(cache_root) if cache_root is not None else cache_dir() / "embeddings"
        tag = hashlib.sha256(f"{self.config.model}\0{self.config.max_length}{self._variant()}".encode()).hexdigest()[:10]
        self.cache_path = root / f"{_slug(self.config.model)}-{tag}"
        self._model: Any = None
        self._tok: Any = None
        self._cache: dict[bytes, np.ndarray] | None = None
        self.computed = 0  # texts run through the model by this embedder
        self.compute_seconds = 0.0  # time spent in the model (loading excluded)

    def _variant(self) -> str:
        """What the key adds for a representation other than the original (mean of the last layer)."""
        c = self.config
        if is_sentiment_model(c.model) or (c.pooling, c.layer) == ("mean", "last"):
            return ""
        return f"\0{c.pooling}\0{c.layer}"

    @property
    def is_sentiment(self) -> bool:
        return is_sentiment_model(self.config.model)

    def key(self, text: str) -> bytes:
        """Cache key of a text: sha256 of the model spec, the representation (when not the default) and the text."""
        return hashlib.sha256(f"{self.config.model}{self._variant()}\0{text}".encode()).digest()

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
        if self.is_sentiment:
            raise KgfinError(f"{self.config.model} is a sentiment scorer, not a language model")
        if self._model is None:
            self._model, self._tok = load_text_model(self.config.model)
        return self._model, self._tok

    def release(self) -> None:
        """Drop the loaded model (the cache stays)."""
        self._model = self._tok = None

    def _store(self, todo: list[tuple[bytes, str]], vecs: np.ndarray) -> None:
        cache = self._load_cache()
        for (k, _), v in zip(todo, vecs, strict=True):
            cache[k] = v
        self.computed += len(todo)
        if self.config.cache and todo:
            self._write_shard([k for k, _ in todo], vecs)

    def _todo(self, texts: list[str]) -> list[tuple[bytes, str]]:
        """Distinct uncached texts, longest first (batches of similar length waste little on padding)."""
        cache = self._load_cache()
        return sorted({k: t for t in texts if (k := self.key(t)) not in cache}.items(),
                      key=lambda kt: (-len(kt[1]), kt[0]))

    def _read(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim()), dtype=np.float32)
        cache = self._load_cache()
        out = np.stack([cache[self.key(t)] for t in texts]).astype(np.float32)
        if self.config.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def embed(self, texts: list[str], progress: bool = True) -> np.ndarray:
        """(len(texts), d) float32 vectors; cached texts are read, the rest computed and cached."""
        return embed_together([self], texts, progress=progress)[0][0]

    def token_states(self, texts: list[str], progress: bool = True) -> TokenStates:
        """Token states of ``texts`` at the configured layer (not cached; for attention pooling)."""
        return embed_together([], texts, progress=progress, states_of=[self])[1][0]

    def dim(self) -> int:
        """Vector width (from the cache if possible, else from the model config)."""
        if self.is_sentiment:
            from kgfin.llm.sentiment import SENTIMENT_FEATURES

            return len(SENTIMENT_FEATURES[self.config.model])
        cache = self._load_cache()
        if cache:
            return len(next(iter(cache.values())))
        model, _ = self.model()
        return int(model.config.hidden_size)


def embed_together(embedders: list[NewsEmbedder], texts: list[str], progress: bool = True,
                   states_of: list[NewsEmbedder] = ()) -> tuple[list[np.ndarray], list[TokenStates]]:
    """Vectors of ``texts`` for every embedder, the uncached ones of one model computed in one pass.

    All embedders (and those of ``states_of``, whose layer's token states of every text are
    returned too, for learned pooling) must share the model spec and ``max_length``; they may
    differ in pooling and layer. The first one's loaded model is used.
    """
    import torch

    states_of = list(states_of)
    members = [*embedders, *states_of]
    if not members:
        raise ValueError("embed_together needs an embedder")
    lead = members[0]
    spec, length = lead.config.model, lead.config.max_length
    if any(e.config.model != spec or e.config.max_length != length for e in members):
        raise ValueError("embed_together: every embedder must share the model spec and max_length")
    for e in embedders:
        if e.config.pooling == "attention":
            raise KgfinError("attention pooling is learned with the return head and has no cached vectors: "
                             "use NewsEmbedder.token_states (kgfin.fusion.pooling)")
    todo = [e._todo(texts) for e in embedders]
    states_out: list[TokenStates] = []
    if lead.is_sentiment:
        for e, items in zip(embedders, todo, strict=True):
            if items:
                t0 = time.perf_counter()
                vecs = sentiment_features(spec, [t for _, t in items])
                e.compute_seconds += time.perf_counter() - t0
                e._store(items, vecs)
        return [e._read(texts) for e in embedders], []

    # distinct texts to run: the union of what is uncached, or all of them when token states are wanted
    need = {t for items in todo for _, t in items}
    if states_of:
        need |= set(texts)
    order = sorted(need, key=lambda t: (-len(t), t))
    if order:
        model, tok = lead.model()
        layers = tuple(dict.fromkeys(e.config.layer for e in members))
        row = {t: i for i, t in enumerate(order)}
        pooled: list[list[np.ndarray]] = [[] for _ in embedders]
        kept: list[list[np.ndarray]] = [[] for _ in states_of]
        masks: list[np.ndarray] = []
        bs = lead.config.batch_size
        t0 = time.perf_counter()
        with torch.inference_mode():
            for i in tqdm(range(0, len(order), bs), desc=f"embedding news ({spec})", unit="batch",
                          disable=not progress):
                states, mask = token_states(model, tok, order[i:i + bs], length, layers)
                for j, e in enumerate(embedders):
                    pooled[j].append(pool_states(states[e.config.layer], mask, e.config.pooling).float().numpy())
                for j, e in enumerate(states_of):
                    kept[j].append(states[e.config.layer].float().numpy())
                if states_of:
                    masks.append(mask.numpy())
        seconds = time.perf_counter() - t0
        for j, (e, items) in enumerate(zip(embedders, todo, strict=True)):
            e.compute_seconds += seconds / len(members)
            if items:
                vecs = np.concatenate(pooled[j])
                e._store(items, vecs[[row[t] for _, t in items]])
        log.info("embedded %d texts with %s in %.1f s (%d representation(s), token states of %d)", len(order), spec,
                 seconds, len(embedders), len(states_of))
        if states_of:
            width = max(m.shape[1] for m in masks)
            all_mask = np.zeros((len(order), width), dtype=np.int64)
            at = 0
            for m in masks:
                all_mask[at:at + len(m), :m.shape[1]] = m
                at += len(m)
            pick = [row[t] for t in texts]
            for e, parts in zip(states_of, kept, strict=True):
                e.compute_seconds += seconds / len(members)
                all_states = np.zeros((len(order), width, parts[0].shape[2]), dtype=np.float32)
                at = 0
                for st in parts:
                    all_states[at:at + len(st), :st.shape[1]] = st
                    at += len(st)
                all_states *= all_mask[..., None]
                states_out.append(TokenStates(all_states[pick], all_mask[pick]))
    else:
        states_out = [TokenStates(np.zeros((0, 1, 1), np.float32), np.zeros((0, 1), np.int64)) for _ in states_of]
    return [e._read(texts) for e in embedders], states_out
