"""Constrained decoding of the analyst's JSON answer: every answer parses and names known companies.

A 135M model asked for JSON invents tickers, names the broker of an analyst note, copies the
format's placeholders or repeats digits until the token limit; all of that is a refusal (see
:mod:`kgfin.llm.parse`) and carries no signal for alignment. :class:`AnswerGrammar` restricts
each next token to those that keep the reply inside this language (after the prefilled
:data:`~kgfin.llm.prompts.ANSWER_PREFIX`, which opens the first entry's name)::

    NAME", "impact_type": "TYPE", "impact_score": "SCORE"}, {"name": "NAME", ... "SCORE"}]}}

with NAME one of the universe's ``"Name (TICKER)"`` (each at most once), TYPE one of
:data:`IMPACT_TYPES` and SCORE a nonzero integer in [-10, 10] whose sign agrees with TYPE (1 to
10 after "positive", -10 to -1 after "negative": a company the answer names moves), quoted as
in the prompt's format (the model expects the quote; without it greedy answers drift to 0). The direction is a word because
that is where SmolLM2-135M encodes it: after a news item its log-odds of "positive" over
"negative" correlate 0.6 with the planted shock, those of "1" over "-" as a score's first
token -0.4 (``eval/sign_probe.py``). What remains for the model to choose is what matters: which
companies, their relation to the news, the sign and size of each score, and how many
entries (at most ``max_companies``, and never more than fit in ``max_new_tokens``, so the
JSON always closes). After the closing braces only EOS is allowed.

:meth:`AnswerGrammar.with_first_entries` restricts each batch row's *first* entry to given
companies (``AlignConfig.first_entry: news``: those the news item names), so the answer opens
with the news' own company and the model chooses its direction, size and any further firms.

``type_bias`` adds a constant to the logits of each impact type where the first entry's type
is decided (the first token of its type slot): :mod:`kgfin.align.calibration` sets it to
cancel the model's prior for "positive" over "negative" there (batch calibration). Later
entries are left alone: their prior differs (with the first entry's bias on every entry,
every second entry of the 2015-04 evaluation came out negative).

The language is a chain of *slots*, each a token trie over its alternatives (each
alternative's text includes the separator that follows it, so slots join without
ambiguity). The trie uses each alternative's own tokenisation, so a reply's tokens may
differ from how the tokenizer would split the same text; decoding them gives the text.

kgfin decodes with :func:`kgfin.llm.generate.grammar_generate`, which steps a state per row
(:meth:`AnswerGrammar.start`) and appends the tokens the grammar forces without a forward pass each
(jump-forward; same distribution). :meth:`AnswerGrammar.logits_processor` (or, without a type bias,
:meth:`AnswerGrammar.prefix_allowed_tokens_fn`) does the same token by token inside transformers'
``generate``; PPO uses
:meth:`AnswerGrammar.sampler_choices` (where the grammar left a choice, among which tokens, with the type bias:
one walk) to take log-probabilities under the same constrained distribution it sampled from.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kgfin.errors import KgfinError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

__all__ = ["IMPACT_TYPES", "SLOT_NAME", "SLOT_SCORE", "SLOT_TYPE", "AnswerGrammar", "GrammarError", "RowRule",
           "SamplerChoices", "company_label", "company_labels", "type_stem"]

IMPACT_TYPES = ("positive", "negative")
_SIGN_OF_TYPE = {"positive": "+", "negative": "-"}  # other impact types allow either sign

_AFTER_NAME = '", "impact_type": "'
_AFTER_TYPE = '", "impact_score": "'
_NEXT_ENTRY = '"}, {"name": "'
_CLOSE = '"}]}}'

SLOT_NAME, SLOT_TYPE, SLOT_SCORE = 0, 1, 2  # an entry's slots: company, impact type (direction), score (+ close)
_CONTINUE, _END = "continue", "end"  # score-slot tags are (kind, sign): kind continue or end, sign + - or 0


def company_label(ticker: str, name: str) -> str:
    """How an answer names a company: ``"Name (TICKER)"``."""
    return f"{name} ({ticker})"


def company_labels(tickers: Sequence[str], names: Sequence[str]) -> dict[str, str]:
    """Ticker -> :func:`company_label` for a universe's companies."""
    return {t: company_label(t, n) for t, n in zip(tickers, names, strict=True)}


def type_stem(company: str) -> str:
    """An entry's text from its company up to where the grammar decides the impact type."""
    return f"{company}{_AFTER_NAME}"


@dataclass(frozen=True)
class RowRule:
    """What one batch row's answer may name: ``first`` the companies its first entry must be one of, ``names`` the
    companies any entry may be (None: no restriction), ``order`` the companies the entries after the first name, in
    this order, skipping one already named (None: the model chooses; the answer may still close early). Given per
    row to :meth:`AnswerGrammar.with_first_entries` (a plain collection there means ``RowRule(first=...)``)."""

    first: frozenset[str] | None = None
    names: frozenset[str] | None = None
    order: tuple[str, ...] | None = None


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

    def __init__(self, grammar: AnswerGrammar, rule: RowRule | None = None):
        self.g = grammar
        self.first = rule.first if rule else None  # companies the first entry must name (None: any)
        self.names = rule.names if rule else None  # companies any entry may name (None: any)
        self.order = rule.order if rule else None  # the later entries' companies, in order (None: free)
        self.slot = SLOT_NAME  # then SLOT_TYPE, SLOT_SCORE (+ continue or close)
        self.node = grammar.slots[SLOT_NAME].root
        self.entries = 0
        self.tokens = 0
        self.slot_start = 0
        self.done = False
        self.named: set[str] = set()  # names already in the answer
        self.sign: str | None = None  # the sign the current entry's impact type requires ("+" or "-")

    def _permitted(self) -> Callable[[set[Hashable]], bool]:
        """Whether a subtree with these tags still holds an allowed alternative."""
        g = self.g
        if self.slot == SLOT_NAME and self.entries == 0 and self.first is not None:  # the item's first-entry companies
            first = self.first if self.names is None else self.first & self.names
            return lambda tags: bool(tags & first)
        if self.slot == SLOT_NAME and self.entries > 0 and self.order is not None:  # the order's next company
            following = self._following()
            return lambda tags: following in tags
        if self.slot == SLOT_NAME and self.names is not None:  # a listed company not yet named
            left = self.names - self.named
            return lambda tags: bool(tags & left)
        if self.slot == SLOT_NAME:  # a company not yet named
            return lambda tags: not tags <= self.named
        if self.slot == SLOT_TYPE:
            return lambda tags: True
        # the score slot decides between another entry and the close: another entry must still fit
        room = g.max_new_tokens - self.slot_start
        nameable = g.n_companies if self.names is None else len(self.names)
        more = (self.entries + 1 < min(g.max_companies, nameable)
                and g.longest_score[_CONTINUE] + g.entry_tokens <= room
                and (self.order is None or self._following() is not None))
        kinds = {_CONTINUE, _END} if more else {_END}
        signs = {"+", "-", "0"} if self.sign is None else {self.sign}

        return lambda tags: any(kind in kinds and sign in signs for kind, sign in tags)  # type: ignore[misc]

    def _following(self) -> str | None:
        """With an order: its first company the answer has not named yet (None when all are)."""
        assert self.order is not None
        return next((c for c in self.order if c not in self.named), None)

    def allowed(self) -> list[int]:
        if self.done:
            return [self.g.eos_token_id]
        ok = self._permitted()
        return [t for t, child in self.node.children.items() if ok(child.tags)]

    def bias(self) -> dict[int, float]:
        """Logit offsets at this position: the type bias where the first entry's impact type is decided, else none."""
        at_first_type = (not self.done and self.entries == 0 and self.slot == SLOT_TYPE
                         and self.node is self.g.slots[SLOT_TYPE].root)
        return self.g.first_type_bias if at_first_type else {}

    def advance(self, token: int) -> bool:
        """Take ``token``; False if the grammar does not allow it (the state is then unchanged)."""
        child = None if self.done else self.node.children.get(token)
        if child is None or not self._permitted()(child.tags):
            return False
        self.tokens += 1
        self.node = child
        if self.node.tag is not None:
            if self.slot == SLOT_NAME:
                self.named.add(self.node.tag)
            if self.slot == SLOT_TYPE:
                self.sign = _SIGN_OF_TYPE.get(self.node.tag)
            if self.slot == SLOT_SCORE:
                self.entries += 1
                self.done = self.node.tag[0] == _END  # type: ignore[index]
            self.slot = (self.slot + 1) % 3
            self.node = self.g.slots[self.slot].root
            self.slot_start = self.tokens
        return True


@dataclass
class SamplerChoices:
    """The constrained sampler's masks in sparse form: the reply positions where the grammar allowed more than one
    token (``rows``, ``positions``: N of them), the tokens allowed at any of them (``vocab``: U), which of those each
    position allowed (``allowed``: (N, U) bool), the column of the token taken there (``taken``: (N,)), the
    type bias added (``bias``: (N, U) float, None without a type bias), and what each choice decides: its answer
    entry (``entries``: (N,), 0 = the first) and slot (``slots``: (N,), :data:`SLOT_NAME`, :data:`SLOT_TYPE` =
    the direction, :data:`SLOT_SCORE` = the size and whether another entry follows).

    Every other valid position was forced: its token had probability 1 under the constrained distribution, so its
    log-probability is 0 and carries no gradient. PPO therefore needs the model's logits only at these N positions
    and only for these U tokens, not the (B, T, V) logits (:meth:`kgfin.align.ppo.PPOTrainer._forward`).
    """

    rows: torch.Tensor
    positions: torch.Tensor
    vocab: torch.Tensor
    allowed: torch.Tensor
    taken: torch.Tensor
    entries: torch.Tensor
    slots: torch.Tensor
    bias: torch.Tensor | None = None

    def log_softmax(self, hidden: torch.Tensor, head: torch.nn.Module, temperature: float = 1.0) -> torch.Tensor:
        """(N, U) log-probabilities of the tokens at each choice under the constrained sampler: the log-softmax over
        the allowed tokens (-inf elsewhere) of the (type-biased) logits over ``temperature``. ``hidden``: (B, T, H)
        final hidden states, position t the one that predicts reply token t; ``head``: the model's output layer,
        run on the N choices and the U tokens allowed somewhere only (not the (B, T, V) logits)."""
        import torch

        logits = hidden[self.rows, self.positions] @ head.weight[self.vocab].T  # (N, U)
        if getattr(head, "bias", None) is not None:
            logits = logits + head.bias[self.vocab]
        if self.bias is not None:  # the sampler added the grammar's type bias before temperature
            logits = logits + self.bias
        logits = (logits / temperature).masked_fill(~self.allowed, -math.inf)
        return torch.log_softmax(logits.float(), dim=-1)

    def log_probs(self, hidden: torch.Tensor, head: torch.nn.Module, temperature: float = 1.0) -> torch.Tensor:
        """(N,) log-probability of each choice's taken token (:meth:`log_softmax`)."""
        return self.log_softmax(hidden, head, temperature).gather(-1, self.taken[:, None]).squeeze(-1)

    def select(self, rows: torch.Tensor) -> SamplerChoices:
        """The choices of batch rows ``rows`` (in that order), renumbered 0..len(rows)-1."""
        import torch

        new_row = {int(r): n for n, r in enumerate(rows.tolist())}
        old = self.rows.tolist()
        keep = [n for n, r in enumerate(old) if r in new_row]
        renumbered = [new_row[old[n]] for n in keep]
        idx = torch.tensor(keep, dtype=torch.long, device=self.rows.device)
        return SamplerChoices(torch.tensor(renumbered, dtype=torch.long, device=self.rows.device),
                              self.positions[idx], self.vocab, self.allowed[idx], self.taken[idx], self.entries[idx],
                              self.slots[idx], None if self.bias is None else self.bias[idx])

    def dense(self, reply_ids: torch.Tensor, reply_mask: torch.Tensor, vocab_size: int
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The same masks as (B, T, V) tensors: the allowed tokens at each reply position (the taken token alone
        where it was forced, every token outside ``reply_mask``) and the type bias (None without one)."""
        import torch

        b, t = reply_ids.shape
        mask = torch.ones(b, t, vocab_size, dtype=torch.bool, device=reply_ids.device)
        valid = reply_mask.bool()
        mask[valid] = False
        mask[valid, reply_ids[valid]] = True
        mask[self.rows, self.positions] = False
        rows = self.rows[:, None].expand_as(self.allowed)
        positions = self.positions[:, None].expand_as(self.allowed)
        tokens = self.vocab[None, :].expand_as(self.allowed)
        mask[rows[self.allowed], positions[self.allowed], tokens[self.allowed]] = True
        if self.bias is None:
            return mask, None
        bias = torch.zeros(b, t, vocab_size, device=reply_ids.device)
        bias[rows, positions, tokens] = self.bias
        return mask, bias


class AnswerGrammar:
    """The analyst answer's language over a tokenizer's tokens (module docstring).

    ``companies``: the names the answer may use, as ``"Name (TICKER)"``.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, companies: Sequence[str], *, max_companies: int = 5,
                 max_new_tokens: int = 96, impact_types: Sequence[str] = IMPACT_TYPES, score_limit: int = 10,
                 type_bias: Mapping[str, float] | None = None):
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
            _Trie(tokenizer, {type_stem(c): c for c in dict.fromkeys(companies)}),
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
        self.type_first_tokens = self._type_first_tokens()
        self.first_entries: list[RowRule | None] | None = None  # per batch row (with_first_entries)
        self.type_bias: dict[str, float] = {}
        self.first_type_bias: dict[int, float] = {}  # token -> offset at the first entry's type decision
        if type_bias:
            self._set_type_bias(type_bias)

    def _type_first_tokens(self) -> dict[str, int]:
        """Each impact type's first token in the type slot (distinct types may share one)."""
        return {next(iter(child.tags)): t for t, child in self.slots[1].root.children.items() if len(child.tags) == 1}

    def _set_type_bias(self, type_bias: Mapping[str, float]) -> None:
        unknown = set(type_bias) - set(self.slots[1].longest)
        if unknown:
            raise GrammarError(f"type_bias names unknown impact types {sorted(unknown)}; the grammar has "
                               f"{sorted(self.slots[1].longest)}")
        shared = [t for t in type_bias if t not in self.type_first_tokens]
        if shared:
            raise GrammarError(f"impact types {shared} share their first token with another type: a bias on it "
                               "would move both")
        if not all(math.isfinite(v) for v in type_bias.values()):
            raise GrammarError(f"type_bias must be finite, got {dict(type_bias)}")
        self.type_bias = {k: float(v) for k, v in type_bias.items()}
        self.first_type_bias = {self.type_first_tokens[k]: v for k, v in self.type_bias.items() if v != 0.0}

    def with_type_bias(self, type_bias: Mapping[str, float]) -> AnswerGrammar:
        """A copy of this grammar (sharing its tries) with ``type_bias`` added to the impact types' logits."""
        out = copy.copy(self)
        out._set_type_bias(type_bias)
        return out

    def with_first_entries(self, rows: Sequence[Collection[str] | RowRule | None]) -> AnswerGrammar:
        """A copy for one batch whose row ``i`` must open its answer with a company of ``rows[i]`` (None: any).

        A :class:`RowRule` also restricts every entry of the row to its ``names`` (the candidates its
        prompt lists) and may fix the later entries' companies and their order (``order``: every listed
        company). Rows are the batch's rows in order (generation, PPO's rollout and its log-probability masks all
        index them the same way).
        """
        known = set(self.slots[0].longest)
        checked: list[RowRule | None] = []
        for i, row in enumerate(rows):
            if row is None:
                checked.append(None)
                continue
            rule = row if isinstance(row, RowRule) else RowRule(first=frozenset(row))
            order = frozenset(rule.order) if rule.order is not None else None
            for what, names in (("first-entry companies", rule.first), ("allowed companies", rule.names),
                                ("ordered companies", order)):
                if names is None:
                    continue
                if not names:
                    raise GrammarError(f"{what} of row {i}: empty (give None to leave the row free)")
                unknown = names - known
                if unknown:
                    raise GrammarError(f"{what} of row {i}: {sorted(unknown)} are not in the grammar")
            if rule.first is not None and rule.names is not None and not rule.first & rule.names:
                raise GrammarError(f"row {i}: none of its first-entry companies is among its allowed companies")
            if order is not None and rule.names is not None and not order <= rule.names:
                raise GrammarError(f"row {i}: ordered companies {sorted(order - rule.names)} are not among its "
                                   "allowed companies")
            checked.append(rule)
        out = copy.copy(self)
        out.first_entries = checked
        return out

    def _first(self, row: int) -> RowRule | None:
        if self.first_entries is None:
            return None
        if row >= len(self.first_entries):
            raise GrammarError(f"batch row {row} has no first-entry companies ({len(self.first_entries)} rows given)")
        return self.first_entries[row]

    @classmethod
    def for_universe(cls, tokenizer: PreTrainedTokenizerBase, tickers: Sequence[str], names: Sequence[str],
                     **kwargs: Any) -> AnswerGrammar:
        """The grammar over a universe's companies, written ``"Name (TICKER)"``."""
        return cls(tokenizer, list(company_labels(tickers, names).values()), **kwargs)

    def encode_answer(self, tokenizer: PreTrainedTokenizerBase, entries: Sequence[tuple[str, int]]) -> list[int]:
        """The reply tokens (after the prefilled prefix) of an answer naming ``entries`` ((company label, nonzero
        score) pairs, in order), tokenised slot by slot as the grammar's tries are, so that the constrained sampler
        could have produced exactly these tokens (supervised targets, :mod:`kgfin.align.warm_start`). The impact
        type follows each score's sign."""
        if not 1 <= len(entries) <= min(self.max_companies, self.n_companies):
            raise GrammarError(f"an answer names 1..{min(self.max_companies, self.n_companies)} companies, got "
                               f"{len(entries)}")
        ids: list[int] = []
        for i, (label, score) in enumerate(entries):
            if score == 0 or abs(score) > 10:
                raise GrammarError(f"entry {i} ({label}): score {score} is not a nonzero integer in [-10, 10]")
            after = _CLOSE if i == len(entries) - 1 else _NEXT_ENTRY
            kind = "positive" if score > 0 else "negative"
            for text in (type_stem(label), f"{kind}{_AFTER_TYPE}", f"{int(score)}{after}"):
                ids += tokenizer(text, add_special_tokens=False)["input_ids"]
        if self._replay(ids) is None:
            raise GrammarError(f"the answer {entries} is outside this grammar (unknown company, repeated name or too "
                               f"long for max_new_tokens={self.max_new_tokens})")
        return ids

    def start(self, row: int = 0) -> _State:
        """The state of batch row ``row``'s empty reply (its first-entry rule applied): ``allowed()``, ``bias()``
        and ``advance(token)`` step it (:func:`kgfin.llm.generate.grammar_generate`)."""
        return _State(self, self._first(row))

    def _replay(self, reply_ids: Sequence[int], row: int = 0) -> _State | None:
        """The state after batch row ``row``'s ``reply_ids``; None if they leave the grammar."""
        state = self.start(row)
        return state if all(state.advance(int(t)) for t in reply_ids) else None

    def allowed_after(self, reply_ids: Sequence[int], row: int = 0) -> list[int]:
        """Tokens allowed after the reply tokens ``reply_ids`` of batch row ``row`` (only EOS once the answer has
        closed or strayed)."""
        state = self._replay(reply_ids, row)
        return state.allowed() if state is not None else [self.eos_token_id]

    def _tracker(self, prompt_length: int) -> Callable[[int, torch.Tensor], _State | None]:
        """Row -> state of its reply during ``generate`` on left-padded prompts of ``prompt_length`` tokens.

        Keeps one incremental state per row (generation appends one token per call), so a
        step costs O(1) per row instead of a replay of the whole reply; None once a reply strayed.
        """
        states: dict[int, tuple[int, _State | None]] = {}

        def state_of(batch_id: int, input_ids: torch.Tensor) -> _State | None:
            reply = input_ids[prompt_length:]
            seen, state = states.get(batch_id, (0, _State(self, self._first(batch_id))))
            if state is not None and len(reply) == seen + 1:
                state = state if state.advance(int(reply[-1])) else None
            elif len(reply) != seen:
                state = self._replay(reply.tolist(), batch_id)
            states[batch_id] = (len(reply), state)
            return state

        return state_of

    def prefix_allowed_tokens_fn(self, prompt_length: int) -> Callable[[int, torch.Tensor], list[int]]:
        """For ``model.generate(prefix_allowed_tokens_fn=...)`` on left-padded prompts of ``prompt_length`` tokens
        (the type bias needs :meth:`logits_processor`)."""
        state_of = self._tracker(prompt_length)

        def allowed(batch_id: int, input_ids: torch.Tensor) -> list[int]:
            state = state_of(batch_id, input_ids)
            return state.allowed() if state is not None else [self.eos_token_id]

        return allowed

    def logits_processor(self, prompt_length: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """For ``model.generate(logits_processor=LogitsProcessorList([...]))``: masks every token the grammar does
        not allow and adds the type bias. ``generate`` runs it before temperature, as PPO's forward pass does."""
        import torch

        state_of = self._tracker(prompt_length)

        def process(input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            out = torch.full_like(scores, -math.inf)
            for row in range(scores.shape[0]):
                state = state_of(row, input_ids[row])
                allowed = state.allowed() if state is not None else [self.eos_token_id]
                out[row, allowed] = scores[row, allowed]
                for token, offset in (state.bias() if state is not None else {}).items():
                    out[row, token] += offset
            return out

        return process

    def _walk(self, reply_ids: torch.Tensor, reply_mask: torch.Tensor
              ) -> Iterator[tuple[int, int, int, _State | None]]:
        """(row, position, token, state before that token) over the valid reply positions."""
        ids, valid = reply_ids.cpu().tolist(), reply_mask.cpu().bool().tolist()
        for row in range(len(ids)):
            state: _State | None = _State(self, self._first(row))
            for i, token in enumerate(ids[row]):
                if not valid[row][i]:
                    continue
                yield row, i, token, state
                if state is not None and not state.advance(token):
                    state = None

    def sampler_choices(self, reply_ids: torch.Tensor, reply_mask: torch.Tensor) -> SamplerChoices:
        """Where the constrained sampler chose among several tokens in these replies, among which, and the type
        bias it added there (:class:`SamplerChoices`), from one walk through the grammar.

        Log-probabilities of a constrained sampler are those of the biased logits with every other token masked
        out; PPO takes them for its policy and reference passes at these positions only (a forced token has
        log-probability 0).
        """
        import torch

        at: list[tuple[int, int]] = []
        decides: list[tuple[int, int]] = []  # (entry, slot) of each choice
        tokens: list[int] = []
        options: list[list[int]] = []
        offsets: list[dict[int, float]] = []
        for row, i, token, state in self._walk(reply_ids, reply_mask):
            allowed = state.allowed() if state is not None else [self.eos_token_id]
            if len(allowed) > 1:
                if token not in allowed:
                    raise GrammarError(f"reply row {row}, position {i}: token {token} is not one the grammar allowed "
                                       "there (not a reply of this grammar's sampler)")
                at.append((row, i))
                decides.append((state.entries, state.slot) if state is not None else (-1, -1))
                tokens.append(token)
                options.append(allowed)
                offsets.append(state.bias() if state is not None else {})
        vocab = sorted({t for allowed in options for t in allowed})
        column = {t: j for j, t in enumerate(vocab)}
        mask = torch.zeros(len(at), len(vocab), dtype=torch.bool)
        bias = torch.zeros(len(at), len(vocab)) if self.first_type_bias else None
        for n, (allowed, offset) in enumerate(zip(options, offsets, strict=True)):
            mask[n, [column[t] for t in allowed]] = True
            if bias is not None:
                for token, value in offset.items():
                    if token in column:
                        bias[n, column[token]] = value
        where = torch.tensor(at, dtype=torch.long).reshape(-1, 2)
        dev = reply_ids.device
        taken = torch.tensor([column[t] for t in tokens], dtype=torch.long)
        what = torch.tensor(decides, dtype=torch.long).reshape(-1, 2)
        return SamplerChoices(where[:, 0].to(dev), where[:, 1].to(dev), torch.tensor(vocab, dtype=torch.long).to(dev),
                              mask.to(dev), taken.to(dev), what[:, 0].to(dev), what[:, 1].to(dev),
                              None if bias is None else bias.to(dev))
