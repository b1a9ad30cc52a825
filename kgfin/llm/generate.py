"""Batched chat generation: prompts in, assistant replies out.

Used for memory-accuracy checks (greedy) and for ripple prediction (greedy or sampled).
Prompts are user messages (optionally with a system message); the tokenizer's chat
template adds the assistant turn. Batches are left-padded so generation starts aligned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["chat_prompts", "generate_replies"]


def chat_prompts(tokenizer: PreTrainedTokenizerBase, messages: Sequence[str], system: str | None = None,
                 prefix: str = "") -> list[str]:
    """Render user ``messages`` with the chat template, ending with the assistant turn's header and ``prefix``."""
    out = []
    for text in messages:
        turns = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
        out.append(tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True) + prefix)
    return out


def generate_replies(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[str],
    *,
    system: str | None = None,
    max_new_tokens: int = 64,
    batch_size: int = 16,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    prefix: str = "",
    progress: bool = False,
) -> list[str]:
    """Assistant replies to each user message; ``temperature`` 0 means greedy decoding.

    Sampling is seeded (``seed``) so replies are reproducible. ``prefix`` is prefilled as the
    start of every reply (and included in the returned text).
    """
    import torch

    prompts = chat_prompts(tokenizer, messages, system, prefix)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    replies: list[str] = []
    gen = torch.Generator().manual_seed(seed)
    try:
        for lo in tqdm(range(0, len(prompts), batch_size), desc="generating", disable=not progress):
            batch = tokenizer(prompts[lo:lo + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            kwargs: dict = {"max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
            if temperature > 0:
                kwargs |= {"do_sample": True, "temperature": temperature, "top_p": top_p}
                torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            else:
                kwargs |= {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
            with torch.no_grad():
                out = model.generate(**batch, **kwargs)
            new = out[:, batch["input_ids"].shape[1]:]
            replies += [prefix + t if prefix else t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = side
    return replies
