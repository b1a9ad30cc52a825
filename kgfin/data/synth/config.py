"""Configuration of the synthetic market (every knob, with the default's reason)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from kgfin.config import KgfinConfig

__all__ = [
    "AlphaConfig", "EventsConfig", "RelationsConfig", "ReturnsConfig", "SynthConfig",
]


class RelationsConfig(KgfinConfig):
    """How the four relation networks are drawn and how they evolve month by month."""

    supply_out_degree: float = Field(3.0, gt=0, description="mean number of customers per supplier")
    supply_churn: float = Field(0.03, ge=0, le=1, description="monthly probability that a supply link ends (replaced by a new one)")
    supply_value_vol: float = Field(0.08, ge=0, description="monthly log-volatility of a link's dollar value")
    board_size: tuple[int, int] = Field((7, 11), description="board size range per company")
    interlock_share: float = Field(0.15, ge=0, le=1, description="probability that a new seat goes to a director already sitting elsewhere")
    seat_hazard: float = Field(0.01, ge=0, le=1, description="monthly probability that a seat ends (about 8 years' tenure)")
    funds_per_company: float = Field(0.1, gt=0, description="number of funds = max(12, this x companies)")
    fund_size: tuple[int, int] = Field((25, 60), description="holdings per fund (capped at half the universe)")
    fund_turnover: float = Field(0.05, ge=0, le=1, description="monthly probability that a holding is sold and replaced")
    patents_per_month: float = Field(0.6, ge=0, description="mean patent grants per company-month (scaled by sector and size)")
    patent_history_months: int = Field(60, ge=0, description="months of patents generated before the start (for trailing windows)")
    tech_peers: int = Field(5, ge=1, description="true technical competitors per firm (top-k by latent CPC-profile correlation)")
    tech_min_similarity: float = Field(0.3, ge=-1, le=1, description="minimum latent similarity of a true technical competitor")
    fund_partners: int = Field(3, ge=1, description="co-held partners per firm that carry fund-flow moves")


class EventsConfig(KgfinConfig):
    """News events and how their shocks ripple through the true graph."""

    rate: float = Field(0.25, ge=0, description="hard (price-moving, rippling) events per company-month")
    soft_rate: float = Field(0.35, ge=0, description="soft news items (analyst notes, reviews) per company-month (x1.4 in the news regime, x0.6 in the factor regime)")
    shock_scale: float = Field(1.0, gt=0, description="multiplies every planted shock size")
    hop_damping: float = Field(0.5, ge=0, le=1, description="second-hop shock = damping x strength x first-hop shock")
    min_effect: float = Field(0.002, ge=0, description="ripple paths moving a stock by less than this (absolute daily return) are not planted")
    next_day_carry: float = Field(0.3, ge=0, le=1, description="share of each shock repeated on the next trading day")
    after_close_share: float = Field(0.25, ge=0, le=1, description="share of news published after the close (priced next day)")


class ReturnsConfig(KgfinConfig):
    """Daily return generation."""

    idio_vol: float = Field(0.018, gt=0, description="median daily idiosyncratic volatility")
    idio_df: float = Field(5.0, gt=2, description="Student-t degrees of freedom of idiosyncratic noise (fat tails)")
    sector_scale: float = Field(1.0, ge=0, description="scale of the industry-specific return component")


class AlphaConfig(KgfinConfig):
    """Planted next-month predictability (for the factor/news return models)."""

    factor_alpha: float = Field(0.012, ge=0, description="monthly std of the factor-driven expected return")
    news_alpha: float = Field(0.020, ge=0, description="monthly expected return per unit of tanh(news sentiment)")
    ripple_drift: float = Field(0.5, ge=0, description="share of each firm's ripple shocks (hop >= 1) of a month "
                                "that is priced only over the following month (under-reaction to news about linked firms)")
    regime_persistence: float = Field(0.85, ge=0, le=1, description="probability that the factor/news regime persists a month")
    news_halflife_days: float = Field(7.0, gt=0, description="half-life of news sentiment before the month end")


class SynthConfig(KgfinConfig):
    """The synthetic market: size, dates, seed and the four parts' settings."""

    seed: int = Field(0, description="random seed; the same seed gives byte-identical output")
    companies: int = Field(120, ge=20, description="number of companies")
    months: int = Field(36, ge=2, description="number of simulated months")
    start: str = Field("2014-01", description="first month (YYYY-MM); all real factor sources cover 1999-01..2017-03")
    format: Literal["parquet", "csv"] = Field("parquet", description="file format of the tables")
    relations: RelationsConfig = Field(default_factory=RelationsConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    returns: ReturnsConfig = Field(default_factory=ReturnsConfig)
    alpha: AlphaConfig = Field(default_factory=AlphaConfig)

    @field_validator("start")
    @classmethod
    def _month(cls, v: str) -> str:
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", v):
            raise ValueError(f"start must be a month YYYY-MM, got {v!r}")
        return v
