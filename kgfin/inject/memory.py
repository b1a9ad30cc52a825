"""Memory accuracy: does an adapter answer its month's instruction pairs? (FinRipple appendix E.1)

Each pair is asked greedily; the reply is scored against the stored answer by exact match
after normalisation (case, punctuation, item order for list answers) and, for list
answers, by F1 over the listed items. Numbers match when they agree to the precision the
answer was given in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["accuracy_table", "answer_items", "memory_accuracy", "normalise", "score_answer"]

_SPLIT = re.compile(r"\s*(?:,|;|\band\b|\n)\s*")


def normalise(text: str) -> str:
    """Lower case, trailing punctuation and surrounding quotes removed, whitespace collapsed.

    >>> normalise("  Yes.  ")
    'yes'
    """
    text = re.sub(r"\s+", " ", text.strip().lower())
    return text.strip(" .!\"'`")


def answer_items(text: str) -> set[str]:
    """The items of a list answer ("AAA, BBB and CCC" -> {"aaa", "bbb", "ccc"}).

    >>> sorted(answer_items("ACME, Bolt and crux."))
    ['acme', 'bolt', 'crux']
    """
    return {normalise(x) for x in _SPLIT.split(text) if normalise(x)}


def _first_number(text: str) -> str | None:
    """The first number written in ``text`` (thousands separators ignored), as written."""
    m = re.search(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
    return m.group() if m else None


def score_answer(reply: str, pair: dict[str, Any]) -> tuple[bool, float]:
    """(exact match, F1) of ``reply`` against the pair's answer.

    ``answer_type`` ``list`` compares item sets; ``number`` compares the first number at the
    answer's precision; anything else compares normalised text.
    """
    gold = pair["output"]
    kind = pair.get("answer_type", "text")
    if kind == "list":
        p, g = answer_items(reply), answer_items(gold)
        tp = len(p & g)
        f1 = 0.0 if tp == 0 else 2 * tp / (len(p) + len(g))
        return p == g, f1
    if kind == "number":
        p, g = _first_number(reply), _first_number(gold)
        if p is None or g is None:
            return False, 0.0
        decimals = len(g.split(".")[1]) if "." in g else 0
        ok = abs(float(p) - float(g)) <= 0.5 * 10 ** (-decimals) + 1e-12
        return ok, float(ok)
    ok = normalise(reply) == normalise(gold)
    return ok, float(ok)


def memory_accuracy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[dict[str, Any]],
    *,
    batch_size: int = 16,
    max_new_tokens: int = 64,
    progress: bool = False,
) -> pd.DataFrame:
    """One row per pair: its family, relation, split, the reply, exact match and F1."""
    from kgfin.llm.generate import generate_replies

    replies = generate_replies(model, tokenizer, [p["instruction"] for p in pairs], batch_size=batch_size,
                               max_new_tokens=max_new_tokens, progress=progress)
    rows = []
    for pair, reply in zip(pairs, replies, strict=True):
        exact, f1 = score_answer(reply, pair)
        rows.append({
            "family": pair.get("family", ""), "relation": pair.get("relation", ""),
            "split": pair.get("split", ""), "answer_type": pair.get("answer_type", "text"),
            "instruction": pair["instruction"], "answer": pair["output"], "reply": reply,
            "exact": exact, "f1": f1,
        })
    return pd.DataFrame(rows)


def accuracy_table(scores: pd.DataFrame, by: Sequence[str] = ("split", "family")) -> pd.DataFrame:
    """Exact-match rate, mean F1 and count per group (and overall per first key)."""
    keys = list(by)
    table = scores.groupby(keys).agg(pairs=("exact", "size"), exact_match=("exact", "mean"), f1=("f1", "mean"))
    overall = scores.groupby(keys[:1]).agg(pairs=("exact", "size"), exact_match=("exact", "mean"), f1=("f1", "mean"))
    overall.index = pd.MultiIndex.from_tuples([(k, "all") for k in overall.index], names=keys[:2]) if len(keys) > 1 else overall.index
    return pd.concat([table, overall]).sort_index().reset_index()
