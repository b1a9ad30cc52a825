"""Constrained decoding of the analyst's JSON answer: every answer parses and names known companies.

A 135M model asked for JSON invents tickers, names the broker of an analyst note, copies the
format's placeholders or repeats digits until the token limit; all of that is a refusal (see
:mod:`kgfin.llm.parse`) and carries no signal for alignment. :class:`AnswerGrammar` restricts
each next token to those that keep the reply inside this language (after the prefilled
:data:`~kgfin.llm.prompts.ANSWER_PREFIX`, which opens the first entry's name)::

    NAME", "impact_type": "TYPE", "impact_score": "SCORE"}, {"name": "NAME", ... "SCORE"}]}}

with NAME one of the universe's ``"Name (TICKER)"`` (each at most once), TYPE one of
:data:`IMPACT_TYPES` and SCORE an integer in [-10, 10] whose sign agrees with TYPE (0 to 10
after "positive", -10 to 0 after "negative"), quoted as in the prompt's format (the model
expects the quote; without it greedy answers drift to 0). The direction is a word because
that is where SmolLM2-135M encodes it: after a news item its log-odds of "positive" over
"negative" correlate 0.6 with the planted shock, those of "1" over "-" as a score's first
token -0.4 (``eval/sign_probe.py``). What remains for the model to choose is what matters: which
companies, their relation to the news, the sign and size of each score, and how many
entries (at most ``max_companies``, and never more than fit in ``max_new_tokens``, so the
JSON always closes). After the closing braces only EOS is allowed.

The language is a chain of *slots*, each a token trie over its alternatives (each
alternative's text includes the separator that follows it, so slots join without
ambiguity). The trie uses each alternative's own tokenisation, so a reply's tokens may
differ from how the tokenizer would split the same text; decoding them gives the text.

Use :meth:`AnswerGrammar.prefix_allowed_tokens_fn` with transformers' ``generate``; PPO uses
:meth:`AnswerGrammar.allowed_mask` to take log-probabilities under the same constrained
distribution it sampled from.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kgfin.errors import KgfinError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

__all__ = ["IMPACT_TYPES", "AnswerGrammar", "GrammarError"]

IMPACT_TYPES = ("positive", "negative")
_SIGN_OF_TYPE = {"positive": "+", "negative": "-"}  # other impact types allow either sign

_AFTER_NAME = '", "impact_type": "'
_AFTER_TYPE = '", "impact_score": "'
_NEXT_ENTRY = '"}, {"name": "'
_CLOSE = '"}]}}'

_CONTINUE, _END = "continue", "end"  # score-slot tags are (kind, sign): kind continue or end, sign + - or 0


class GrammarError(KgfinError):
    """The grammar cannot be built (e.g. a token limit too small for one answer entry)."""


@dataclass
class _Node:
    children: dict[int, _Node] = field(default_factory=dict)
    tag: Hashable | None = None  # set on the node that completes an alternative
    tags: set[Hashable] = field(default_factory=set)  # tags of the alternatives below (and at) this node


class _Trie:
    """Token sequences of a slot's alternatives (text -> tag); ``longest`` = most tokens per tag."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, texts: dict[str, Hashable]):
        self.root = _Node()
        self.longest: dict[Hashable, int] = {}
        for text, tag in texts.items():
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            node = self.root
            node.tags.add(tag)
            for t in ids:
                if node.tag is not None:
                    break
                node = node.children.setdefault(t, _Node())
                node.tags.add(tag)
            if node.tag is not None or node.children or not ids:
                raise GrammarError(f"alternative {text!r} and another are prefixes of each other: the answer would "
                                   "be ambiguous")
            node.tag = tag
            self.longest[tag] = max(self.longest.get(tag, 0), len(ids))


class _State:
    """Where a reply stands in the grammar: slot, trie node, entries and tokens so far."""

    def __init__(self, grammar: AnswerGrammar):
        self.g = grammar
        self.slot = 0  # 0 name, 1 type, 2 score (+ continue or close)
        self.node = grammar.slots[0].root
        self.entries = 0
        self.tokens = 0
        self.slot_start = 0
        self.done = False
        self.named: set[str] = set()  # names already in the answer
        self.sign: str | None = None  # the sign the current entry's impact type requires ("+" or "-")

    def _permitted(self) -> Callable[[set[Hashable]], bool]:
        """Whether a subtree with these tags still holds an allowed alternative."""
        g = self.g
        if self.slot == 0:  # a company not yet named
            return lambda tags: not tags <= self.named
        if self.slot == 1:
            return lambda tags: True
        # the score slot decides between another entry and the close: another entry must still fit
        room = g.max_new_tokens - self.slot_start
        more = (self.entries + 1 < min(g.max_companies, g.n_companies)
                and g.longest_score[_CONTINUE] + g.entry_tokens <= room)
        kinds = {_CONTINUE, _END} if more else {_END}
        signs = {"+", "-", "0"} if self.sign is None else {self.sign, "0"}

        return lambda tags: any(kind in kinds and sign in signs for kind, sign in tags)  # type: ignore[misc]

    def allowed(self) -> list[int]:
        if self.done:
            return [self.g.eos_token_id]
        ok = self._permitted()
        return [t for t, child in self.node.children.items() if ok(child.tags)]

    def advance(self, token: int) -> bool:
        """Take ``token``; False if the grammar does not allow it (the state is then unchanged)."""
        child = None if self.done else self.node.children.get(token)
        if child is None or not self._permitted()(child.tags):
            return False
        self.tokens += 1
        self.node = child
        if self.node.tag is not None:
            if self.slot == 0:
                self.named.add(self.node.tag)
            if self.slot == 1:
                self.sign = _SIGN_OF_TYPE.get(self.node.tag)
            if self.slot == 2:
                self.entries += 1
                self.done = self.node.tag[0] == _END  # type: ignore[index]
            self.slot = (self.slot + 1) % 3
            self.node = self.g.slots[self.slot].root
            self.slot_start = self.tokens
        return True


class AnswerGrammar:
    """The analyst answer's language over a tokenizer's tokens (module docstring).

    ``companies``: the names the answer may use, as ``"Name (TICKER)"``.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, companies: Sequence[str], *, max_companies: int = 5,
                 max_new_tokens: int = 96, impact_types: Sequence[str] = IMPACT_TYPES, score_limit: int = 10):
        if not companies:
            raise GrammarError("the answer grammar needs at least one company")
        if max_companies < 1:
            raise GrammarError(f"max_companies must be at least 1, got {max_companies}")
        if tokenizer.eos_token_id is None:
            raise GrammarError("the tokenizer has no EOS token")
        self.eos_token_id = int(tokenizer.eos_token_id)
        self.max_companies, self.max_new_tokens = max_companies, max_new_tokens
        self.n_companies = len(set(companies))
        scores = range(-score_limit, score_limit + 1)
        self.slots = (
            _Trie(tokenizer, {f"{c}{_AFTER_NAME}": c for c in dict.fromkeys(companies)}),
            _Trie(tokenizer, {f"{t}{_AFTER_TYPE}": t for t in dict.fromkeys(impact_types)}),
            _Trie(tokenizer, {f"{s}{after}": (kind, "+" if s > 0 else "-" if s < 0 else "0")
                              for kind, after in ((_CONTINUE, _NEXT_ENTRY), (_END, _CLOSE)) for s in scores}),
        )
        score_lengths = self.slots[2].longest.items()
        self.longest_score = {kind: max(n for (k, _), n in score_lengths if k == kind)  # type: ignore[misc]
                              for kind in (_CONTINUE, _END)}
        # tokens of a whole entry that ends the answer: name, type, score and close
        self.entry_tokens = (max(self.slots[0].longest.values()) + max(self.slots[1].longest.values())
                             + self.longest_score[_END])
        if self.entry_tokens > max_new_tokens:
            raise GrammarError(f"max_new_tokens={max_new_tokens} is too small for one constrained answer entry "
                               f"({self.entry_tokens} tokens); raise it")

    @classmethod
    def for_universe(cls, tokenizer: PreTrainedTokenizerBase, tickers: Sequence[str], names: Sequence[str],
                     **kwargs: Any) -> AnswerGrammar:
        """The grammar over a universe's companies, written ``"Name (TICKER)"``."""
        return cls(tokenizer, [f"{n} ({t})" for t, n in zip(tickers, names, strict=True)], **kwargs)

    def _replay(self, reply_ids: Sequence[int]) -> _State | None:
        """The state after ``reply_ids``; None if they leave the grammar."""
        state = _State(self)
        return state if all(state.advance(int(t)) for t in reply_ids) else None

    def allowed_after(self, reply_ids: Sequence[int]) -> list[int]:
        """Tokens allowed after the reply tokens ``reply_ids`` (only EOS once the answer has closed or strayed)."""
        state = self._replay(reply_ids)
        return state.allowed() if state is not None else [self.eos_token_id]

    def prefix_allowed_tokens_fn(self, prompt_length: int) -> Callable[[int, torch.Tensor], list[int]]:
        """For ``model.generate(prefix_allowed_tokens_fn=...)`` on left-padded prompts of ``prompt_length`` tokens.

        Keeps one incremental state per row (generation appends one token per call), so a
        step costs O(1) per row instead of a replay of the whole reply.
        """
        states: dict[int, tuple[int, _State | None]] = {}

        def allowed(batch_id: int, input_ids: torch.Tensor) -> list[int]:
            reply = input_ids[prompt_length:]
            seen, state = states.get(batch_id, (0, _State(self)))
            if state is not None and len(reply) == seen + 1:
                state = state if state.advance(int(reply[-1])) else None
            elif len(reply) != seen:
                state = self._replay(reply.tolist())
            states[batch_id] = (len(reply), state)
            return state.allowed() if state is not None else [self.eos_token_id]

        return allowed

    def allowed_mask(self, reply_ids: torch.Tensor, reply_mask: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """(B, T, V) bool: the tokens the grammar allowed at each reply position (all tokens outside ``reply_mask``).

        Log-probabilities of a constrained sampler are those of the logits with every other
        token masked out; PPO applies this mask to its policy and reference forward passes.
        """
        import torch

        b, t = reply_ids.shape
        mask = torch.ones(b, t, vocab_size, dtype=torch.bool)
        ids, valid = reply_ids.cpu().tolist(), reply_mask.cpu().bool().tolist()
        for row in range(b):
            state: _State | None = _State(self)
            for i in range(t):
                if not valid[row][i]:
                    continue
                allowed = state.allowed() if state is not None else [self.eos_token_id]
                mask[row, i] = False
                mask[row, i, allowed] = True
                if state is not None and not state.advance(ids[row][i]):
                    state = None
        return mask.to(reply_ids.device)
