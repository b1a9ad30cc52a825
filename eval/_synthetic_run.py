"""Command-line arguments shared by the measurement scripts that read a synthetic market and its graph store."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kgfin.align import AlignConfig
from kgfin.config import load_sections
from kgfin.data import MarketData, load_market
from kgfin.data.tables import read_table
from kgfin.pipeline import RECIPE_KEYS


def add_market_args(ap: argparse.ArgumentParser, months_help: str = "news months") -> None:
    """``--run`` or ``--data`` + ``--store``, ``--months`` and the alignment recipe ``--config``."""
    ap.add_argument("--run", type=Path, help="a kgfin demo run folder (uses RUN/data and RUN/graph)")
    ap.add_argument("--data", type=Path, help="data folder of a synthetic market (with truth/)")
    ap.add_argument("--store", help="graph store holding the graph months")
    ap.add_argument("--months", required=True, help=f"{months_help}, YYYY-MM or YYYY-MM..YYYY-MM")
    ap.add_argument("--config", type=Path, action="append",
                    help="recipe(s) whose align section to use (repeatable; default: the AlignConfig defaults)")


@dataclass
class SyntheticRun:
    """What the arguments name: the alignment recipe, the market, its planted truth and the graph store."""

    cfg: AlignConfig
    market: MarketData
    impacts: pd.DataFrame  # truth/impacts: one row per event and affected company (planted shock)
    planted_events: pd.DataFrame  # truth/events, indexed by event_id (event type, focal shock, ...)
    store_path: str


def load_run(ap: argparse.ArgumentParser, args: argparse.Namespace) -> SyntheticRun:
    """Load what ``add_market_args``' arguments name (an argparse error if neither --run nor --data + --store)."""
    data = args.data or (args.run / "data" if args.run else None)
    store_path = args.store or (str(args.run / "graph") if args.run else None)
    if data is None or store_path is None:
        ap.error("give --run, or --data and --store")
    return SyntheticRun(load_sections({"align": AlignConfig}, args.config or [], known=RECIPE_KEYS)["align"],
                        load_market(data),
                        read_table(data / "truth" / "impacts.parquet"),
                        read_table(data / "truth" / "events.parquet").set_index("event_id"), store_path)


def month_range(spec: str) -> list[str]:
    """``YYYY-MM`` or ``YYYY-MM..YYYY-MM`` as the list of months."""
    lo, _, hi = spec.partition("..")
    return [str(p) for p in pd.period_range(lo, hi or lo, freq="M")]
