"""Configuration of the monthly company graphs: how each relation is projected, and the rules of μ.

Defaults are chosen for the synthetic market and for real data of the paper's kind (a few
thousand firms, hundreds of funds, CPC main groups). See ``docs/graph.md``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kgfin.config import KgfinConfig

__all__ = ["GraphConfig", "MuConfig", "MuRule"]


class MuRule(KgfinConfig):
    """Sign and weight of one relation type in the interaction measure μ."""

    sign: Literal[-1, 1] = Field(1, description="+1 cooperation (shocks spread alike), -1 competition (opposite)")
    weight: float = Field(1.0, ge=0, description="multiplies the relation's normalised strength (0 leaves it out of μ)")


class MuConfig(KgfinConfig):
    """Rules of the signed interaction measure μ_t (see ``GraphSnapshot.mu``).

    μ[i, j] = Σ_r sign_r · weight_r · strength_r(i → j), each strength in [0, 1].
    """

    supplies: MuRule = Field(default_factory=lambda: MuRule(sign=1), description="supplier/customer links: cooperation")
    supplies_upstream: float = Field(
        1.0, ge=0,
        description="weight of the customer -> supplier entry (strength = supplier's sales share) relative to the "
                    "supplier -> customer entry (strength = customer's purchase share); 0: supply shocks only flow downstream")
    shares_director: MuRule = Field(default_factory=lambda: MuRule(sign=1), description="board interlocks: cooperation")
    co_held: MuRule = Field(default_factory=lambda: MuRule(sign=1), description="common fund ownership: co-movement")
    tech_similar: MuRule = Field(default_factory=lambda: MuRule(sign=-1), description="technical competitors: competition")


class GraphConfig(KgfinConfig):
    """How a month's relations are built from the raw tables (point in time, sparse projections)."""

    tech_window_months: int = Field(
        60, ge=1, description="TECH_SIMILAR uses patents granted in the trailing window of this many months ending with M "
                              "(60 = 5 years, as in Lee et al. 2019)")
    tech_min_patents: int = Field(5, ge=1, description="firms with fewer patents in the window get no TECH_SIMILAR edges")
    tech_threshold: float | None = Field(
        0.5, ge=-1, le=1, description="keep firm pairs whose CPC-share correlation is at least this (None: no threshold)")
    tech_top_k: int | None = Field(
        10, ge=1, description="keep at most each firm's k most similar firms; a pair kept by either firm is kept (None: no cap)")
    co_held_min_funds: int = Field(1, ge=1, description="CO_HELD needs at least this many funds holding both firms in M")
    co_held_top_k: int | None = Field(
        10, ge=1, description="keep each firm's k partners with the largest overlap Σ_f min(w_fi, w_fj); a pair kept by "
                              "either firm is kept (None: keep every pair with enough common funds - dense)")
    director_saturation: int = Field(
        2, ge=1, description="SHARES_DIRECTOR strength = min(1, shared directors / this): two shared directors is a full tie")
    mu: MuConfig = Field(default_factory=MuConfig, description="signs and weights of the interaction measure μ")

    @model_validator(mode="after")
    def _sparse(self) -> GraphConfig:
        if self.tech_threshold is None and self.tech_top_k is None:
            raise ValueError("set tech_threshold or tech_top_k (with neither, every pair of patenting firms becomes an edge)")
        return self
