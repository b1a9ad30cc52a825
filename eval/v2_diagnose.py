"""Where a ripple row wins or loses, from the v2 per-candidate scores: which firms it puts on top and with which sign.

    python eval/v2_diagnose.py runs/v2-retrieval runs/v2-aligned [--top 2]

Reads each run's ``v2_scores.csv`` (one row per method, event and candidate: score, realised move, planted shock;
synthetic market) and prints, per method, over its ``--top`` largest-|score| candidates of each event: the share that
are planted ripple firms and the share whose score has the sign of the realised move. The first line is what a
supervised target built from outcomes sees: the share of planted firms among each event's ``--top`` largest
realised |moves| (against their share among all candidates) - how much of "what moved most" is ripple, not noise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="v2 output folders (with v2_scores.csv)")
    ap.add_argument("--top", type=int, default=2, help="candidates per event")
    args = ap.parse_args()
    frames = [pd.read_csv(run / "v2_scores.csv", dtype={"event_id": str}) for run in args.runs]
    scores = pd.concat(frames, ignore_index=True).drop_duplicates(["method", "event_id", "ticker"])
    scores = scores.dropna(subset=["move", "planted"])
    if scores.empty:
        raise SystemExit("no candidate has both a realised move and a planted shock (not a synthetic market?)")
    one = scores[scores["method"] == scores["method"].iloc[0]]
    top_moves = one.assign(a=one["move"].abs()).sort_values("a", ascending=False).groupby("event_id").head(args.top)
    print(f"# {one['event_id'].nunique()} events, {len(one)} candidates with an outcome; planted ripple firms: "
          f"{(one['planted'] != 0).mean():.1%} of candidates, {(top_moves['planted'] != 0).mean():.1%} of each "
          f"event's {args.top} largest realised |moves|\n")
    print(f"| method | planted share of its top {args.top} by |score| | sign of score = sign of realised move |")
    print("|:--|--:|--:|")
    for method, part in scores.groupby("method", sort=False):
        top = part.assign(a=part["score"].abs()).sort_values("a", ascending=False).groupby("event_id").head(args.top)
        top = top[top["score"] != 0]
        sign = (np.sign(top["score"]) == np.sign(top["move"])).mean() if len(top) else np.nan
        print(f"| {method} | {(top['planted'] != 0).mean():.1%} | {sign:.1%} |")


if __name__ == "__main__":
    main()
