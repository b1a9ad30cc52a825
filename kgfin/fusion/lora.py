"""LoRA fine-tuning of the newsflow language model while a return model trains.

:class:`LoraNewsEncoder` wraps the language model of ``embed.model`` with rank-``r`` LoRA
adapters (peft; by default on the attention query and value projections) and computes the
newsflow vectors of a batch of stock-months on the fly: the headlines of the batch go
through the model, the token states of ``embed.layer`` are pooled as ``embed.pooling`` says
(``attention``: a learned :class:`kgfin.fusion.models.AttentionPool`, trained at ``lora.lr``
with the return model), and each stock-month gets the mean of its headline vectors, exactly
as the cached path does, but differentiable, so the return model's loss trains the adapters
too (at ``lora.lr``). Only the adapter weights (and the attention pool) train: the
constructor checks that every trainable parameter of the language model is a LoRA weight.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from kgfin.errors import KgfinError
from kgfin.fusion.config import EmbedConfig, LoraConfig
from kgfin.fusion.pooling import stock_month_mean
from kgfin.llm.embeddings import encode, load_text_model, token_states

if TYPE_CHECKING:
    import torch

    from kgfin.fusion.features import Panel

__all__ = ["LoraNewsEncoder", "default_lora_targets"]

_TARGETS = (("query", "value"), ("q_proj", "v_proj"), ("q", "v"), ("c_attn",))


def default_lora_targets(model: Any) -> list[str]:
    """Attention query/value projection names present in ``model`` (BERT, Llama, T5, GPT-2 styles)."""
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    for group in _TARGETS:
        if all(g in names for g in group):
            return list(group)
    raise KgfinError("cannot find attention projections for LoRA; set lora.target_modules")


class LoraNewsEncoder:
    """Differentiable newsflow vectors from a LoRA-adapted language model (see the module doc)."""

    def __init__(self, embed: EmbedConfig, lora: LoraConfig, seed: int = 0) -> None:
        import torch
        from peft import LoraConfig as PeftLoraConfig
        from peft import get_peft_model

        base, self.tokenizer = load_text_model(embed.model, seed=seed)
        targets = lora.target_modules or default_lora_targets(base)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.model = get_peft_model(base, PeftLoraConfig(
                r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets, bias="none"))
        trainable = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        if not trainable or any("lora_" not in n for n in trainable):
            raise KgfinError(f"LoRA set-up left non-adapter parameters trainable: {[n for n in trainable if 'lora_' not in n][:3]}")
        self.n_trainable = sum(p.numel() for p in trainable.values())
        self.max_length = embed.max_length
        self.normalize = embed.normalize
        self.pooling, self.layer = embed.pooling, embed.layer
        self.dim = int(base.config.hidden_size)
        self.pool: Any = None
        if embed.pooling == "attention":
            from kgfin.fusion.models import AttentionPool

            with torch.random.fork_rng():
                torch.manual_seed(seed)
                self.pool = AttentionPool(self.dim)
        self._eval_cache: dict[int, torch.Tensor] = {}
        self._best: dict[str, torch.Tensor] | None = None
        self.model.eval()

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """The LoRA adapter weights (and the attention pool's, if any): the only parameters that train."""
        own = list(self.pool.parameters()) if self.pool is not None else []
        return [p for p in self.model.parameters() if p.requires_grad] + own

    def train(self) -> None:
        self.model.train()
        if self.pool is not None:
            self.pool.train()
        self._eval_cache = {}

    def eval(self) -> None:
        self.model.eval()
        if self.pool is not None:
            self.pool.eval()

    def _items(self, texts: list[str]) -> torch.Tensor:
        if self.pool is not None:
            states, mask = token_states(self.model, self.tokenizer, texts, self.max_length, (self.layer,))
            v = self.pool(states[self.layer], mask)
        else:
            v = encode(self.model, self.tokenizer, texts, self.max_length, self.pooling, self.layer)
        if self.normalize:
            v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return v

    def rows(self, panel: Panel, rows: np.ndarray, grad: bool = True) -> torch.Tensor:
        """(len(rows), d) mean headline vector per stock-month (zeros where there is no news)."""
        import torch

        if grad:
            return stock_month_mean(panel, rows, lambda ids: self._items([panel.texts[i] for i in ids]), self.dim)
        missing = sorted(set(np.concatenate(panel.news_lists(rows) or [np.zeros(0, np.int64)]).tolist())
                         - self._eval_cache.keys())
        with torch.no_grad():
            for s in range(0, len(missing), 64):
                chunk = missing[s:s + 64]
                for i, v in zip(chunk, self._items([panel.texts[i] for i in chunk]), strict=True):
                    self._eval_cache[i] = v
            return stock_month_mean(panel, rows, lambda ids: torch.stack([self._eval_cache[i] for i in ids.tolist()]),
                                    self.dim)

    def snapshot(self) -> None:
        """Remember the current adapter weights (the selected epoch's)."""
        self._best = {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}
        if self.pool is not None:
            self._best |= {f"pool.{k}": v.detach().clone() for k, v in self.pool.state_dict().items()}

    def restore(self) -> None:
        """Put back the remembered adapter weights."""
        import torch

        if self._best is None:
            return
        with torch.no_grad():
            for n, p in self.model.named_parameters():
                if n in self._best:
                    p.copy_(self._best[n])
            if self.pool is not None:
                self.pool.load_state_dict({k[5:]: v for k, v in self._best.items() if k.startswith("pool.")})
        self._eval_cache = {}
