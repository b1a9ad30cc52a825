"""Batched chat generation: prompts in, assistant replies out.

Used for memory-accuracy checks (greedy) and for ripple prediction (greedy or sampled).
Prompts are user messages (optionally with a system message); the tokenizer's chat
template adds the assistant turn. Batches are left-padded so generation starts aligned.

Small models often keep writing after a complete JSON answer (a second object, prose, a
repeat) until the token limit. :class:`StopAtJsonEnd` ends a reply when its top-level JSON
object closes, which makes answers parseable and generation several times shorter.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from kgfin.llm.grammar import AnswerGrammar

__all__ = ["StopAtJsonEnd", "chat_prompts", "generate_replies", "json_end"]


def json_end(text: str) -> int | None:
    """Index just past the brace that closes ``text``'s first top-level JSON object, or None.

    Braces inside JSON strings (with backslash escapes) do not count.

    >>> json_end('{"a": {"b": "}"}} trailing')
    17
    >>> json_end('{"a": 1') is None
    True
    """
    depth, in_string, escaped = 0, False, False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                return i + 1
    return None


class StopAtJsonEnd:
    """A transformers stopping criterion: a row is done once ``prefix`` + its reply closes a JSON object.

    ``stopped_at[row]`` records how many reply tokens the row had when it closed (None while
    open), so callers can cut the reply there. Pass an instance in ``stopping_criteria``.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, prompt_length: int, batch_size: int, prefix: str = ""):
        self.tokenizer, self.prompt_length, self.prefix = tokenizer, prompt_length, prefix
        self.stopped_at: list[int | None] = [None] * batch_size

    def __call__(self, input_ids, scores, **kwargs):  # type: ignore[no-untyped-def]
        import torch

        new = input_ids[:, self.prompt_length:]
        for row in range(new.shape[0]):
            if self.stopped_at[row] is None:
                text = self.tokenizer.decode(new[row], skip_special_tokens=True)
                if json_end(self.prefix + text) is not None:
                    self.stopped_at[row] = new.shape[1]
        return torch.tensor([s is not None for s in self.stopped_at], dtype=torch.bool, device=input_ids.device)


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
    stop_at_json_end: bool = False,
    grammar: AnswerGrammar | None = None,
    first_entries: Sequence[Collection[str] | None] | None = None,
    progress: bool = False,
) -> list[str]:
    """Assistant replies to each user message; ``temperature`` 0 means greedy decoding.

    Sampling is seeded (``seed``) so replies are reproducible. ``prefix`` is prefilled as the
    start of every reply (and included in the returned text). With ``stop_at_json_end`` a
    reply ends where its JSON object closes (:class:`StopAtJsonEnd`). With ``grammar`` every
    reply is decoded inside that answer language (:mod:`kgfin.llm.grammar`); ``first_entries``
    (one item per message, with ``grammar``) restricts each reply's first company
    (:meth:`~kgfin.llm.grammar.AnswerGrammar.with_first_entries`).
    """
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    prompts = chat_prompts(tokenizer, messages, system, prefix)
    if first_entries is not None and (grammar is None or len(first_entries) != len(prompts)):
        raise ValueError(f"first_entries needs a grammar and one item per message ({len(prompts)} messages, "
                         f"{len(first_entries)} items, grammar {'given' if grammar is not None else 'missing'})")
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    replies: list[str] = []
    gen = torch.Generator().manual_seed(seed)
    try:
        for lo in tqdm(range(0, len(prompts), batch_size), desc="generating", disable=not progress):
            batch = tokenizer(prompts[lo:lo + batch_size], return_tensors="pt", padding=True,
                              add_special_tokens=False).to(model.device)
            kwargs: dict = {"max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
            if temperature > 0:
                kwargs |= {"do_sample": True, "temperature": temperature, "top_p": top_p}
                torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            else:
                kwargs |= {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
            stop = StopAtJsonEnd(tokenizer, batch["input_ids"].shape[1], len(batch["input_ids"]), prefix)
            if stop_at_json_end:
                kwargs["stopping_criteria"] = StoppingCriteriaList([stop])
            if grammar is not None:
                rows = grammar if first_entries is None else grammar.with_first_entries(first_entries[lo:lo + batch_size])
                kwargs["logits_processor"] = LogitsProcessorList([rows.logits_processor(batch["input_ids"].shape[1])])
            with torch.no_grad():
                out = model.generate(**batch, **kwargs)
            new = out[:, batch["input_ids"].shape[1]:]
            new = [row[:n] if n is not None else row for row, n in zip(new, stop.stopped_at, strict=True)]
            replies += [prefix + t if prefix else t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = side
    return replies
