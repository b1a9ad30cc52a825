"""Parsing the analyst's answer into impacts on known companies; anything unusable is a refusal.

Robust to what small models write: JSON wrapped in chatter or code fences, single quotes,
trailing commas, an answer cut off by the token limit (closed and parsed as far as it
goes), or no JSON at all (``name ... score`` patterns are still picked up, in one pass
over the text). Names map to the universe by ticker, by "Name (TICKER)", by exact name,
then by a close fuzzy match of the name.

Scores: a JSON number is clipped to [-10, 10] (``Infinity`` too); a string is read as the
first number in it (``"4"``, ``"-7/10"`` -> -7), then clipped. Anything else is not a
score and drops its company: ``NaN``, ``true`` / ``false``, lists, objects, ``null``.
A duplicate key in one JSON object (``{"impact_score": 3, "impact_score": -9}``) is
ambiguous, so the whole answer is refused rather than letting the last value win.

An answer that cannot be parsed, names no known company, has no usable score, copies the
prompt's example, is longer than :data:`MAX_ANSWER_CHARS` or nests its JSON deeper than
:data:`MAX_DEPTH` is a **refusal** with that reason: counted, never an exception.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kgfin.llm.prompts import EXAMPLE_COMPANIES

__all__ = ["Impacts", "Universe", "parse_impacts"]

SCORE_LIMIT = 10.0
MAX_ANSWER_CHARS = 20_000  # about 4,000 tokens; answers are generated with 96-160 new tokens
MAX_DEPTH = 16  # a well-formed answer nests 4 deep ({ { [ {)
_PAREN_TICKER = re.compile(r"\(([A-Z][A-Z0-9.]{0,9})\)")
# The fallback's tokens: a name, a score, or an opening brace (which ends a pending name).
_TOKEN = re.compile(
    r"""["']name["']\s*:\s*["']([^"']+)["']|["']impact_score["']\s*:\s*["']?(-?\d+(?:\.\d+)?)|\{""",
    re.IGNORECASE,
)
_EXAMPLE = {name.lower() for name in EXAMPLE_COMPANIES}


@dataclass(frozen=True)
class Universe:
    """The companies an answer may name: tickers and names, in one order."""

    tickers: tuple[str, ...]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_ticker", {t.upper(): t for t in self.tickers})
        object.__setattr__(self, "_by_name", {n.lower(): t for t, n in zip(self.tickers, self.names, strict=True)})

    @classmethod
    def from_frame(cls, companies: Any) -> Universe:
        """From a DataFrame with ticker and name columns."""
        return cls(tuple(companies["ticker"]), tuple(companies["name"]))

    def resolve(self, text: str) -> str | None:
        """The ticker that ``text`` names, or None."""
        text = text.strip().strip(".,;:'\"")
        if not text:
            return None
        by_ticker: dict[str, str] = self._by_ticker  # type: ignore[attr-defined]
        by_name: dict[str, str] = self._by_name  # type: ignore[attr-defined]
        if text.upper() in by_ticker:
            return by_ticker[text.upper()]
        m = _PAREN_TICKER.search(text)
        if m and m.group(1).upper() in by_ticker:
            return by_ticker[m.group(1).upper()]
        name = _PAREN_TICKER.sub("", text).strip().lower()
        if name in by_name:
            return by_name[name]
        close = difflib.get_close_matches(name, list(by_name), n=1, cutoff=0.85)
        return by_name[close[0]] if close else None


@dataclass
class Impacts:
    """Parsed answer: per-company scores (first mention wins), or a refusal with its reason."""

    scores: dict[str, float] = field(default_factory=dict)
    impact_types: dict[str, str] = field(default_factory=dict)
    analysis: str = ""
    refused: bool = False
    reason: str = ""
    unknown: list[str] = field(default_factory=list)  # names that matched no company

    def vector(self, tickers: Iterable[str]) -> list[float]:
        """Scores in ``tickers`` order, divided by 10 (so in [-1, 1]); 0 for companies not named."""
        return [self.scores.get(t, 0.0) / SCORE_LIMIT for t in tickers]


class _Unusable(Exception):
    """An answer the parser refuses outright; the message is the refusal's reason."""


def _json_candidate(text: str) -> str | None:
    """The first {...} block of ``text``, closed if the answer was cut off.

    Raises :class:`_Unusable` when the block nests deeper than :data:`MAX_DEPTH`.
    """
    start = text.find("{")
    if start < 0:
        return None
    stack: list[str] = []
    in_str: str | None = None
    escaped = False
    for i, ch in enumerate(text[start:], start):
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == in_str:
                in_str = None
        elif ch in "\"'":
            in_str = ch
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
            if len(stack) > MAX_DEPTH:
                raise _Unusable(f"JSON nested deeper than {MAX_DEPTH} levels")
        elif ch in "}]":
            if stack:
                stack.pop()
            if not stack:
                return text[start:i + 1]
    tail = text[start:]
    if in_str:
        tail += in_str
    tail = re.sub(r",\s*$", "", tail.rstrip())
    return tail + "".join(reversed(stack))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's dict; a repeated key raises :class:`_Unusable` (no silent last-wins)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Unusable(f"duplicate key {key!r} in the answer's JSON")
        out[key] = value
    return out


def _loads(block: str) -> Any:
    for attempt in (block, re.sub(r",\s*([}\]])", r"\1", block)):
        for variant in (attempt, attempt.replace("'", '"')):
            try:
                return json.loads(variant, object_pairs_hook=_unique_keys)
            except json.JSONDecodeError:
                pass
            except RecursionError:  # quotes swapped into brackets can nest what the depth check saw as text
                raise _Unusable(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    return None


def _fallback_items(text: str) -> list[tuple[str, Any, str]]:
    """``name ... impact_score`` pairs in one left-to-right pass (linear in the text).

    A name waits for the next score; names between it and that score are skipped, and an
    opening brace in between drops it (it belonged to another object).
    """
    out: list[tuple[str, Any, str]] = []
    pending: str | None = None
    for m in _TOKEN.finditer(text):
        name, score = m.group(1), m.group(2)
        if name is not None:
            pending = pending if pending is not None else name
        elif score is not None:
            if pending is not None:
                out.append((pending, score, ""))
            pending = None
        else:
            pending = None
    return out


def _items(data: Any) -> tuple[list[dict[str, Any]], str]:
    if isinstance(data, dict):
        inner = data.get("impact_analysis", data)
        if isinstance(inner, dict):
            items = inner.get("affected_companies", [])
            analysis = inner.get("analysis", "")
            return ([x for x in items if isinstance(x, dict)] if isinstance(items, list) else []), str(analysis or "")
    if isinstance(data, list):
        return [x for x in data if isinstance(x, dict)], ""
    return [], ""


def _score(value: Any) -> float | None:
    """A clipped score from a JSON number or the first number of a string; None otherwise (see the module doc)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        score = float(value)
    elif isinstance(value, str):
        m = re.search(r"-?\d+(?:\.\d+)?", value)
        if not m:
            return None
        score = float(m.group())
    else:
        return None
    if score != score:  # NaN
        return None
    return max(-SCORE_LIMIT, min(SCORE_LIMIT, score))


def parse_impacts(text: str, universe: Universe) -> Impacts:
    """Impacts on known companies from an analyst answer; a refusal when there are none."""
    if len(text) > MAX_ANSWER_CHARS:
        return Impacts(refused=True, reason=f"answer longer than {MAX_ANSWER_CHARS} characters")
    try:
        block = _json_candidate(text)
        data = _loads(block) if block else None
    except _Unusable as exc:
        return Impacts(refused=True, reason=str(exc))
    items, analysis = _items(data)
    raw: list[tuple[str, Any, str]] = [
        (str(x.get("name", "")), x.get("impact_score"), str(x.get("impact_type", ""))) for x in items
    ]
    if not raw:  # no usable JSON: pick up name ... impact_score pairs wherever they are
        raw = _fallback_items(text)
    out = Impacts(analysis=analysis)
    named_examples = unscored = 0
    for name, value, kind in raw:
        if name.strip().lower().split(" (")[0] in _EXAMPLE:
            named_examples += 1
            continue
        ticker = universe.resolve(name)
        score = _score(value)
        if ticker is None:
            out.unknown.append(name)
        elif score is None:
            unscored += 1
        elif ticker not in out.scores:
            out.scores[ticker] = score
            out.impact_types[ticker] = kind
    if not out.scores:
        out.refused = True
        if named_examples:
            out.reason = "copied the prompt's example"
        elif not raw:
            out.reason = "no parsable answer"
        elif unscored:
            out.reason = "no usable score (NaN, or not a number)"
        else:
            out.reason = "no known company named"
    return out
