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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from kgfin.llm.grammar import AnswerGrammar

__all__ = ["GrammarReplies", "StopAtJsonEnd", "chat_prompts", "generate_replies", "grammar_generate", "json_end"]


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
    reply is decoded inside that answer language (:mod:`kgfin.llm.grammar`, by :func:`grammar_generate`); ``first_entries``
    (one item per message, with ``grammar``) restricts each reply's first company
    (:meth:`~kgfin.llm.grammar.AnswerGrammar.with_first_entries`).
    """
    import torch
    from transformers import StoppingCriteriaList

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
            if grammar is not None:  # jump-forward decoding inside the grammar
                rows = grammar if first_entries is None else grammar.with_first_entries(first_entries[lo:lo + batch_size])
                sampler = torch.Generator(device=model.device).manual_seed(
                    int(torch.randint(0, 2**31 - 1, (1,), generator=gen))) if temperature > 0 else None
                got = grammar_generate(model, batch["input_ids"], batch["attention_mask"], rows,
                                       max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                       temperature=temperature, top_p=top_p, stop_at_answer_end=stop_at_json_end,
                                       generator=sampler)
                texts = tokenizer.batch_decode([row[:n] for row, n in zip(got.tokens, got.lengths, strict=True)],
                                               skip_special_tokens=True)
                replies += [prefix + t if prefix else t.strip() for t in texts]
                continue
            kwargs: dict = {"max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
            if temperature > 0:
                kwargs |= {"do_sample": True, "temperature": temperature, "top_p": top_p}
                torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            else:
                kwargs |= {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
            stop = StopAtJsonEnd(tokenizer, batch["input_ids"].shape[1], len(batch["input_ids"]), prefix)
            if stop_at_json_end:
                kwargs["stopping_criteria"] = StoppingCriteriaList([stop])
            with torch.no_grad():
                out = model.generate(**batch, **kwargs)
            new = out[:, batch["input_ids"].shape[1]:]
            new = [row[:n] if n is not None else row for row, n in zip(new, stop.stopped_at, strict=True)]
            replies += [prefix + t if prefix else t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = side
    return replies


@dataclass
class GrammarReplies:
    """What :func:`grammar_generate` produced."""

    tokens: torch.Tensor  # (B, T) reply tokens, right-padded with the pad token
    lengths: list[int]  # reply length of each row (its EOS included when it was generated)
    closed: list[bool]  # the answer's JSON closed (else the row ran into max_new_tokens)
    forward_passes: int  # model calls, the prefill included
    logprobs: list[list[float]]  # per row, each reply token's log-probability under the constrained sampler


def grammar_generate(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    grammar: AnswerGrammar,
    *,
    max_new_tokens: int,
    pad_token_id: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    stop_at_answer_end: bool = True,
    cache: Any = None,
    generator: torch.Generator | None = None,
    max_width: int | None = None,
) -> GrammarReplies:
    """Replies to left-padded prompts decoded inside ``grammar``, jumping over the tokens it forces.

    The distribution is that of ``model.generate`` with ``grammar.logits_processor`` (disallowed tokens masked,
    the type bias added, then temperature and top-p; greedy at ``temperature`` 0), but where the grammar allows
    exactly one next token (the JSON's keys and punctuation, the tail of a company name once it is unambiguous,
    about two thirds of an answer's tokens) that token is appended without asking the model, and fed to it
    together with the chosen token before it: a step is one forward pass per *choice*, not per token. Each
    step's new tokens of all rows go in one right-padded (B, width) pass; padding is masked out of attention and
    skipped in the position ids, so every row's cache holds exactly its own tokens.

    ``stop_at_answer_end``: a row ends where its answer's JSON closes (no EOS; as :class:`StopAtJsonEnd`),
    else with the EOS the grammar then forces. ``cache``: the key/value cache of the prompts but their last token
    (consumed); ``generator``: the sampling RNG. Log-probabilities are those of the sampled distribution (at
    ``temperature`` 0: of the masked, biased logits). ``max_width``: at most this many tokens of a row per pass
    (None: its whole forced run; on a 2-core CPU width 8 and None were equally fast, width 1 about 1.4x slower).
    """
    import torch
    from transformers import TopPLogitsWarper

    device = input_ids.device
    b = input_ids.shape[0]
    eos = grammar.eos_token_id
    states = [grammar.start(r) for r in range(b)]
    replies: list[list[int]] = [[] for _ in range(b)]
    logprobs: list[list[float]] = [[] for _ in range(b)]
    done, closed = [False] * b, [False] * b
    att = attention_mask.clone()
    pos = (att.cumsum(1) - 1).clamp(min=0)
    top = TopPLogitsWarper(top_p) if temperature > 0 and top_p < 1.0 else None
    with torch.no_grad():
        if cache is not None:
            out = model(input_ids=input_ids[:, -1:], attention_mask=att, position_ids=pos[:, -1:], cache=cache,
                        use_cache=True)
        else:
            out = model(input_ids=input_ids, attention_mask=att, position_ids=pos, use_cache=True, logits_to_keep=1)
        passes, cache = 1, out.cache
        logits = out.logits[:, -1].float()
        next_pos = att.sum(1)
        pending: dict[int, list[int]] = {}  # tokens in a reply but not yet fed to the model
        while True:
            choosing = [r for r in range(b) if not done[r] and not pending.get(r)]
            picks: list[tuple[int, int, float]] = []  # (row, chosen token, its log-probability)
            if choosing:
                scores = torch.full((len(choosing), logits.shape[-1]), -torch.inf, device=device)
                for i, r in enumerate(choosing):
                    allowed = states[r].allowed()
                    scores[i, allowed] = logits[r, allowed]
                    for token, offset in states[r].bias().items():
                        scores[i, token] += offset
                if temperature > 0:
                    scores = scores / temperature
                    if top is not None:
                        scores = top(None, scores)
                    chosen = torch.multinomial(torch.softmax(scores, -1), 1, generator=generator).squeeze(1)
                else:
                    chosen = scores.argmax(-1)
                chosen_logp = torch.log_softmax(scores, -1).gather(1, chosen[:, None]).squeeze(1).tolist()
                picks = list(zip(choosing, chosen.tolist(), chosen_logp, strict=True))
            for r, token, lp in picks:
                new = []
                logprobs[r].append(lp)  # the forced tokens after it have probability 1
                while True:  # the chosen token, then every token the grammar forces after it
                    new.append(token)
                    if token == eos:
                        done[r] = True
                        break
                    states[r].advance(token)
                    if states[r].done:
                        closed[r] = True
                        done[r] = stop_at_answer_end
                    if done[r] or len(replies[r]) + len(new) >= max_new_tokens:
                        done[r] = True
                        break
                    allowed = states[r].allowed()
                    if len(allowed) != 1:
                        break
                    token = allowed[0]
                replies[r] += new
                logprobs[r] += [0.0] * (len(new) - 1)
                pending[r] = [] if done[r] else new
            feed = {r: toks[:max_width] for r, toks in pending.items() if toks}  # a finished row has none
            if not feed:
                break
            width = max(len(t) for t in feed.values())
            ids = torch.full((b, width), pad_token_id, dtype=torch.long, device=device)
            step_att = torch.zeros((b, width), dtype=att.dtype, device=device)
            for r, toks in feed.items():
                ids[r, :len(toks)] = torch.tensor(toks, device=device)
                step_att[r, :len(toks)] = 1
                pending[r] = pending[r][len(toks):]
            step_pos = next_pos[:, None] + torch.arange(width, device=device)[None, :]
            att = torch.cat([att, step_att], dim=1)
            out = model(input_ids=ids, attention_mask=att, position_ids=step_pos, cache=cache, use_cache=True)
            passes, cache = passes + 1, out.cache
            last = torch.tensor([len(feed.get(r, [0])) - 1 for r in range(b)], device=device)
            logits = out.logits[torch.arange(b, device=device), last].float()
            next_pos = next_pos + step_att.sum(1)
    width = max(len(t) for t in replies)
    tokens = torch.full((b, width), pad_token_id, dtype=torch.long, device=device)
    for r, toks in enumerate(replies):
        tokens[r, :len(toks)] = torch.tensor(toks, dtype=torch.long, device=device)
    return GrammarReplies(tokens, [len(t) for t in replies], closed, passes, logprobs)
