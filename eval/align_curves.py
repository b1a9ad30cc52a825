"""What an alignment run's log says: per-month means of the reward, its terms, KL, the share of +-10 scores and the
answer length (each with its number of steps and a 95 % CI), the first quarter of the run against the last (Welch
t-test), and the curves as an SVG (the report's chart).

    python eval/align_curves.py runs/align22 [--svg docs/img/align22-curves.svg]

Reads OUT/align_log.csv of ``kgfin align``; prints markdown.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from kgfin.align.trainer import LOG_NAME
from kgfin.report.charts import training_curves

COLUMNS = ["reward", "mse", "ic", "kl", "saturated", "named", "response_length", "seconds"]


def _mean_ci(x: pd.Series) -> str:
    x = x.dropna()
    if len(x) < 2:
        return f"{x.mean():.4f}" if len(x) else "-"
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return f"{x.mean():.4f} ± {half:.4f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="kgfin align's output folder")
    ap.add_argument("--svg", type=Path, help="write the curves here")
    args = ap.parse_args()
    log = pd.read_csv(args.run / LOG_NAME)
    cols = [c for c in COLUMNS if c in log and log[c].notna().any()]
    print(f"# {args.run / LOG_NAME}: {len(log)} steps, {log['month'].nunique()} months, "
          f"{log['seconds'].sum() / 60:.1f} min of steps\n")
    print("| month | steps | " + " | ".join(cols) + " |")
    print("|:--|--:|" + "--:|" * len(cols))
    for month, part in log.groupby("month", sort=True):
        print(f"| {month} | {len(part)} | " + " | ".join(_mean_ci(part[c]) for c in cols) + " |")
    q = max(2, len(log) // 4)
    first, last = log.head(q), log.tail(q)
    print(f"\nfirst vs last {q} steps (mean ± 95 % CI; Welch t-test):\n")
    print("| column | first | last | t | p |")
    print("|:--|--:|--:|--:|--:|")
    for c in cols:
        a, b = first[c].dropna(), last[c].dropna()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a constant column (e.g. no +-10 score at all)
            t, p = stats.ttest_ind(b, a, equal_var=False) if len(a) > 1 and len(b) > 1 else (np.nan, np.nan)
        print(f"| {c} | {_mean_ci(a)} | {_mean_ci(b)} | {t:.2f} | {p:.3g} |")
    if args.svg:
        args.svg.parent.mkdir(parents=True, exist_ok=True)
        args.svg.write_text(training_curves(log))
        print(f"\ncurves: {args.svg}")


if __name__ == "__main__":
    main()
