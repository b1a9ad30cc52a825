"""Command-line arguments shared by the measurement scripts that read a synthetic market and its graph store."""

from __future__ import annotations

import argparse
import logging
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def add_v2_args(ap: argparse.ArgumentParser) -> None:
    """The arguments of the ripple evaluation v2 scripts: market, store, months, recipes, ``--set``, ``--out``."""
    ap.add_argument("--data", type=Path, required=True, help="data folder of the market (with truth/ if synthetic)")
    ap.add_argument("--store", required=True, help="graph store holding the graph months")
    ap.add_argument("--months", required=True, help="held-out news months, YYYY-MM or YYYY-MM..YYYY-MM")
    ap.add_argument("--config", type=Path, action="append", default=[], help="recipe(s) (ripple_eval and align)")
    ap.add_argument("--set", dest="set_", action="append", default=[],
                    help="SECTION.KEY=VALUE for ripple_eval or align (repeatable)")
    ap.add_argument("--out", type=Path, help="write v2.md and the CSVs here")


def load_v2_configs(args: argparse.Namespace) -> tuple[Any, AlignConfig]:
    """The ripple_eval and align sections the v2 scripts' ``--config`` / ``--set`` name."""
    from kgfin.evaluate.ripple import RippleEvalConfig

    cfgs = load_sections({"ripple_eval": RippleEvalConfig, "align": AlignConfig}, args.config, args.set_,
                         known=RECIPE_KEYS)
    return cfgs["ripple_eval"], cfgs["align"]


@dataclass
class V2Script:
    """What every v2 script starts from: its arguments, recipes, market, months and start time."""

    args: argparse.Namespace
    cfg: Any  # the ripple_eval section
    align: AlignConfig
    market: MarketData
    months: list[str]
    started: float


def start_v2(ap: argparse.ArgumentParser) -> V2Script:
    """Parse ``ap`` (with :func:`add_v2_args` in it), quiet the logs, and load the recipes, market and months."""
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    cfg, acfg = load_v2_configs(args)
    return V2Script(args, cfg, acfg, load_market(args.data), month_range(args.months), started)


def print_v2(title: str, months: list[str], res: Any, started: float, out: Path | None,
             extra_lines: list[str] = ()) -> None:
    """A v2 run's tables, per-row seconds, wall time and peak memory; its files written to ``out``."""
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"# {title}: {', '.join(months)} ({res.counts['events scored']} events)\n")
    print(res.to_markdown())
    for line in extra_lines:
        print(line)
    print("seconds per row: " + ", ".join(f"{k} {v:.1f}" for k, v in res.seconds.items()))
    print(f"wall time {wall:.0f} s, peak memory {peak:.0f} MB")
    if out:
        res.write(out)
        print(f"tables: {out}")
