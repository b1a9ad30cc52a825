"""Settings of instruction-pair generation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kgfin.config import KgfinConfig

__all__ = ["FAMILIES", "InstructConfig"]

Family = Literal["retrieval", "judgment", "question"]
FAMILIES: tuple[Family, ...] = ("retrieval", "judgment", "question")
Relation = Literal["SUPPLIES", "SHARES_DIRECTOR", "CO_HELD", "TECH_SIMILAR"]


class InstructConfig(KgfinConfig):
    """What pairs to generate from a month's graph."""

    seed: int = Field(0, description="random seed (phrasings, negatives, sampling)")
    families: list[Family] = Field(list(FAMILIES), description="pair families to generate")
    relations: list[Relation] = Field(["SUPPLIES", "SHARES_DIRECTOR", "CO_HELD", "TECH_SIMILAR"],
                                      description="relation types to ask about")
    subgraph_nodes: int | None = Field(None, ge=2, description="ask only about a random sample of this many companies "
                                       "(answers stay true for the whole graph); None: all companies")
    max_pairs_per_family: int | None = Field(
        150, ge=1, description="cap on pairs per family (a random sample; None: every pair)")
    negatives_per_positive: float = Field(1.0, ge=0, description="yes/no judgements: 'no' pairs per 'yes' pair")
    list_top_k: int = Field(5, ge=1, description="retrieval of most-similar / most co-held firms lists this many")
    buffer_size: int = Field(40, ge=0, description="rotating buffer: carry this many highest-weight pairs from earlier months (0: off)")
    buffer_months: int = Field(6, ge=1, description="how many earlier months feed the rotating buffer")
