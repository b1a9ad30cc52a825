"""Instruction pairs from a month's company graph (FinRipple section 3.2, appendix E.1).

Three families, for every relation type:

* **retrieval** (list answers): "Which companies supplied X in 2021-03?", "Which firms share
  a director with X?", "What are X's 5 most technically similar firms?", "Which companies
  have more than one kind of link with X?";
* **judgment** (yes/no): "Did X supply Y in 2021-03?", "Are X and Y held by the same fund?";
  as many "no" pairs as "yes" pairs, drawn from pairs certainly not linked by the relation
  that month (see ``_Graph.unlinked``: no supply link either way, no common fund at all, no
  common director, or a CPC correlation well below the similarity threshold);
* **question** (facts and quantities): "What is the relationship between X and Y?", "What is
  the technical similarity score between X and Y?", "How many directors do X and Y share?",
  "What was the value of X's supplies to Y?", "How many funds hold both X and Y?".

Questions name companies as "Name (TICKER)"; list answers give tickers in alphabetical
order. Every answer is computed from the snapshot, and every pair records the triples it
was derived from (``source``) and a weight (the strength of the edges behind it, used by
the rotating buffer). Generation is deterministic for a given snapshot and seed.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kgfin.graph import CO_HELD, SHARES_DIRECTOR, SUPPLIES, TECH_SIMILAR, GraphSnapshot
from kgfin.instruct.config import InstructConfig

__all__ = ["InstructionPair", "generate_pairs", "read_pair_file", "write_pairs"]


@dataclass(frozen=True)
class InstructionPair:
    """One instruction and its answer, with where it came from."""

    instruction: str
    output: str
    month: str
    family: str
    relation: str
    answer_type: str  # list | yes_no | number | text
    subject: str  # ticker the pair is about (the first company named)
    source: list[list[str]] = field(default_factory=list)  # [source, RELATION, target] triples
    weight: float = 0.0
    carried: bool = False  # True when brought forward from an earlier month by the buffer

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


RETRIEVAL_TEMPLATES = {
    ("SUPPLIES", "in"): ("Which companies supplied {x} in {m}?", "Who were the suppliers of {x} in {m}?",
                         "List the suppliers of {x} in {m}."),
    ("SUPPLIES", "out"): ("Which companies did {x} supply in {m}?", "Who were the customers of {x} in {m}?",
                          "List the companies {x} supplied in {m}."),
    ("SHARES_DIRECTOR", ""): ("Which firms share a director with {x} in {m}?",
                              "Which companies had a board member in common with {x} in {m}?"),
    ("CO_HELD", ""): ("What are the {k} companies most held by the same funds as {x} in {m}?",
                      "Which {k} firms overlap most with {x} in mutual-fund portfolios in {m}?"),
    ("TECH_SIMILAR", ""): ("What are {x}'s {k} most technically similar firms in {m}?",
                           "Which {k} companies have patent portfolios closest to {x}'s in {m}?"),
    ("MULTI", ""): ("Which companies have more than one kind of link with {x} in {m}?",
                    "Which firms are connected to {x} by several relation types in {m}?"),
}
JUDGMENT_TEMPLATES = {
    "SUPPLIES": ("Did {x} supply {y} in {m}?", "Was {x} a supplier of {y} in {m}?"),
    "SHARES_DIRECTOR": ("Do {x} and {y} share a director in {m}?",
                        "Does a director sit on the boards of both {x} and {y} in {m}?"),
    "CO_HELD": ("Are {x} and {y} held by the same fund in {m}?", "Do mutual funds hold both {x} and {y} in {m}?"),
    "TECH_SIMILAR": ("Are {x} and {y} technically similar in {m}?",
                     "Do {x} and {y} have closely related patent portfolios in {m}?"),
}
QUESTION_TEMPLATES = {
    "RELATIONSHIP": ("What is the relationship between {x} and {y} in {m}?", "How are {x} and {y} connected in {m}?"),
    "TECH_SIMILAR": ("What is the technical similarity score between {x} and {y} in {m}?",),
    "SHARES_DIRECTOR": ("How many directors do {x} and {y} share in {m}?",),
    "SUPPLIES": ("What was the value of {x}'s supplies to {y} in {m}?",),
    "CO_HELD": ("How many funds hold both {x} and {y} in {m}?",),
}
# How each relation reads from the first company's side in "relationship" answers.
RELATIONSHIP_PHRASES = {
    ("SUPPLIES", "out"): "supplier of", ("SUPPLIES", "in"): "customer of",
    ("SHARES_DIRECTOR", ""): "shares directors with", ("CO_HELD", ""): "co-held by funds with",
    ("TECH_SIMILAR", ""): "technically similar to",
}


class _Graph:
    """Neighbour lookups over a snapshot's edges (both directions for undirected relations)."""

    def __init__(self, snap: GraphSnapshot):
        self.snap = snap
        names = dict(zip(snap.companies["ticker"], snap.companies["name"], strict=True))
        self.label = {t: f"{n} ({t})" for t, n in names.items()}
        self.nbrs: dict[tuple[str, str], dict[str, dict[str, dict[str, float]]]] = {}
        for rel, frame in snap.edges.items():
            rows = frame.to_dict("records")
            if rel == SUPPLIES:
                self.nbrs[(rel, "out")] = _index(rows, "source", "target")
                self.nbrs[(rel, "in")] = _index(rows, "target", "source")
            else:
                both = _index(rows, "source", "target")
                for k, v in _index(rows, "target", "source").items():
                    both.setdefault(k, {}).update(v)
                self.nbrs[(rel, "")] = both
        common = snap.holdings.merge(snap.holdings, on="fund_id")
        self.any_common_fund = set(zip(common["ticker_x"], common["ticker_y"], strict=True))
        # CPC share vectors, centred and scaled, for "technically dissimilar" checks.
        shares = snap.cpc.pivot_table(index="ticker", columns="cpc_group", values="share", fill_value=0.0)
        vec = shares.to_numpy() - shares.to_numpy().mean(axis=1, keepdims=True)
        vec /= np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
        self.cpc_vector = dict(zip(shares.index, vec, strict=True))
        threshold = snap.config.tech_threshold
        self.tech_negative_below = 0.5 * threshold if threshold is not None else 0.25

    def neighbours(self, rel: str, direction: str, x: str) -> dict[str, dict[str, float]]:
        return self.nbrs.get((rel, direction), {}).get(x, {})

    def unlinked(self, rel: str, x: str, y: str) -> bool:
        """True when ``x`` and ``y`` are certainly not linked by ``rel`` this month.

        SUPPLIES: no link either way; SHARES_DIRECTOR: no common director; CO_HELD: no common
        fund at all (not just outside the top-k); TECH_SIMILAR: no edge and a CPC correlation
        below half the graph's threshold (firms without recent patents are dissimilar).
        """
        if x == y:
            return False
        if rel == SUPPLIES:
            return y not in self.neighbours(rel, "out", x) and y not in self.neighbours(rel, "in", x)
        if rel == CO_HELD:
            return (x, y) not in self.any_common_fund
        if y in self.neighbours(rel, "", x):
            return False
        if rel == TECH_SIMILAR and x in self.cpc_vector and y in self.cpc_vector:
            return float(self.cpc_vector[x] @ self.cpc_vector[y]) < self.tech_negative_below
        return True

    def links(self, x: str) -> dict[str, list[tuple[str, str]]]:
        """Every company linked to ``x``, with the (relation, direction) keys linking them."""
        out: dict[str, list[tuple[str, str]]] = {}
        for key, table in self.nbrs.items():
            for y in table.get(x, {}):
                out.setdefault(y, []).append(key)
        return out


def _index(rows: list[dict], a: str, b: str) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for r in rows:
        out.setdefault(r[a], {})[r[b]] = r
    return out


def _triple(rel: str, direction: str, x: str, y: str) -> list[str]:
    return [y, rel, x] if (rel == SUPPLIES and direction == "in") else [x, rel, y]


def _retrieval(g: _Graph, subjects: Sequence[str], month: str, cfg: InstructConfig,
               rng: np.random.Generator) -> list[InstructionPair]:
    pairs = []
    for x in subjects:
        for (rel, direction), templates in RETRIEVAL_TEMPLATES.items():
            if rel != "MULTI" and rel not in cfg.relations:
                continue
            if rel == "MULTI":
                linked = {y: keys for y, keys in g.links(x).items() if len({k[0] for k in keys}) > 1}
                items = sorted(linked)
                source = [_triple(k[0], k[1], x, y) for y in items for k in linked[y]]
                weight = float(np.mean([g.neighbours(k[0], k[1], x)[y]["weight"] for y in items for k in linked[y]])) if items else 0.0
            else:
                nb = g.neighbours(rel, direction, x)
                if rel in (CO_HELD, TECH_SIMILAR):  # "most similar": top-k by weight, ties by ticker
                    items = sorted(sorted(nb, key=lambda y: (-nb[y]["weight"], y))[:cfg.list_top_k])
                else:
                    items = sorted(nb)
                source = [_triple(rel, direction, x, y) for y in items]
                weight = float(np.mean([nb[y]["weight"] for y in items])) if items else 0.0
            if not items:
                continue
            text = templates[rng.integers(len(templates))].format(x=g.label[x], m=month, k=cfg.list_top_k)
            pairs.append(InstructionPair(text, ", ".join(items), month, "retrieval", rel, "list", x, source, weight))
    return pairs


def _judgment(g: _Graph, subjects: Sequence[str], month: str, cfg: InstructConfig,
              rng: np.random.Generator) -> list[InstructionPair]:
    pairs = []
    subject_set = set(subjects)
    for rel in cfg.relations:
        templates = JUDGMENT_TEMPLATES[rel]
        direction = "out" if rel == SUPPLIES else ""
        positives = [(x, y, info) for x in subjects for y, info in sorted(g.neighbours(rel, direction, x).items())
                     if y in subject_set and (rel == SUPPLIES or x < y)]
        for x, y, info in positives:
            text = templates[rng.integers(len(templates))].format(x=g.label[x], y=g.label[y], m=month)
            pairs.append(InstructionPair(text, "Yes", month, "judgment", rel, "yes_no", x,
                                         [_triple(rel, direction, x, y)], float(info["weight"])))
        n_neg = int(round(cfg.negatives_per_positive * len(positives)))
        used: set[tuple[str, str]] = set()
        for _ in range(20 * n_neg):  # rejection sampling of distinct unlinked pairs
            if len(used) >= n_neg:
                break
            x, y = subjects[rng.integers(len(subjects))], subjects[rng.integers(len(subjects))]
            key = (x, y) if rel == SUPPLIES else (min(x, y), max(x, y))
            if key in used or not g.unlinked(rel, x, y):
                continue
            used.add(key)
            text = templates[rng.integers(len(templates))].format(x=g.label[x], y=g.label[y], m=month)
            pairs.append(InstructionPair(text, "No", month, "judgment", rel, "yes_no", x, [], 0.0))
    return pairs


def _question(g: _Graph, subjects: Sequence[str], month: str, cfg: InstructConfig,
              rng: np.random.Generator) -> list[InstructionPair]:
    pairs = []
    subject_set = set(subjects)

    def fmt(templates: tuple[str, ...], x: str, y: str) -> str:
        return templates[rng.integers(len(templates))].format(x=g.label[x], y=g.label[y], m=month)

    for x in subjects:
        links = g.links(x)
        for y in sorted(links):
            if y not in subject_set or y < x:  # each unordered pair once, asked from the first ticker's side
                continue
            keys = [k for k in links[y] if k[0] in cfg.relations]
            if not keys:
                continue
            phrases = sorted(RELATIONSHIP_PHRASES[k] for k in keys)
            weight = max(g.neighbours(k[0], k[1], x)[y]["weight"] for k in keys)
            pairs.append(InstructionPair(fmt(QUESTION_TEMPLATES["RELATIONSHIP"], x, y), ", ".join(phrases), month,
                                         "question", "RELATIONSHIP", "list", x,
                                         [_triple(k[0], k[1], x, y) for k in keys], float(weight)))
            for rel, direction in keys:
                info = g.neighbours(rel, direction, x)[y]
                if rel == SUPPLIES and direction == "out":
                    answer = f"${info['value_usd'] / 1e6:.1f} million"
                elif rel == TECH_SIMILAR:
                    answer = f"{info['similarity']:.2f}"
                elif rel == SHARES_DIRECTOR:
                    answer = str(int(info["count"]))
                elif rel == CO_HELD:
                    answer = str(int(info["funds"]))
                else:
                    continue
                pairs.append(InstructionPair(fmt(QUESTION_TEMPLATES[rel], x, y), answer, month, "question", rel,
                                             "number", x, [_triple(rel, direction, x, y)], float(info["weight"])))
    return pairs


_FAMILY_BUILDERS = {"retrieval": _retrieval, "judgment": _judgment, "question": _question}


def _rng(seed: int, month: str, part: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(month.encode()), zlib.crc32(part.encode())])


def generate_pairs(snapshot: GraphSnapshot, cfg: InstructConfig | None = None) -> list[InstructionPair]:
    """All instruction pairs of one month's snapshot, deduplicated, in a stable order."""
    cfg = cfg or InstructConfig()
    month = snapshot.month
    g = _Graph(snapshot)
    tickers = snapshot.tickers
    subjects = list(tickers)
    if cfg.subgraph_nodes is not None and cfg.subgraph_nodes < len(tickers):
        pick = _rng(cfg.seed, month, "subgraph").choice(len(tickers), size=cfg.subgraph_nodes, replace=False)
        subjects = [tickers[i] for i in sorted(pick)]
    out: list[InstructionPair] = []
    seen: set[str] = set()
    for family in cfg.families:
        rng = _rng(cfg.seed, month, family)
        unique = []
        for p in _FAMILY_BUILDERS[family](g, subjects, month, cfg, rng):
            key = " ".join(p.instruction.lower().split())
            if key not in seen:
                seen.add(key)
                unique.append(p)
        if cfg.max_pairs_per_family is not None and len(unique) > cfg.max_pairs_per_family:
            unique = _stratified_sample(unique, cfg.max_pairs_per_family, rng)
        out += unique
    return out


def _stratified_sample(pairs: list[InstructionPair], cap: int, rng: np.random.Generator) -> list[InstructionPair]:
    """``cap`` pairs spread evenly over relations (so dense relations do not crowd out the rest), in input order."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        groups.setdefault(p.relation, []).append(i)
    order = {rel: list(rng.permutation(idx)) for rel, idx in sorted(groups.items())}
    keep: list[int] = []
    while len(keep) < cap:  # round-robin over relations until the cap is reached
        for rel in sorted(order):
            if order[rel] and len(keep) < cap:
                keep.append(int(order[rel].pop()))
    return [pairs[i] for i in sorted(keep)]


def write_pairs(pairs: Iterable[InstructionPair], path: str | Path) -> Path:
    """Write pairs as JSONL (one JSON object per line, keys sorted)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".partial")
    tmp.write_text("".join(p.to_json() + "\n" for p in pairs))
    tmp.replace(path)
    return path


def read_pair_file(path: str | Path) -> pd.DataFrame:
    """A pairs JSONL file as a DataFrame (for inspection and statistics)."""
    return pd.read_json(path, lines=True)
