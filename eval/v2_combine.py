"""One ripple evaluation v2 table from several runs on the same events and candidates (e.g. a row added later, such
as an alignment run's, without scoring the other rows again), with the paired tests between rows of different runs.

    python eval/v2_combine.py runs/v2-a runs/v2-b:knowledge=knowledge_plain --baselines propagation_only,knowledge \
        --out runs/v2-all

Each RUN is a folder written by eval/ripple_v2.py or ``kgfin evaluate ripple`` (its ``v2_per_event.csv``);
``RUN:old=new,...`` renames rows of that run (two runs' rows of one name that differ must be told apart). The runs
must have scored the same events with the same variants, and a row present in several runs must have the same
per-event metrics in each (deterministic rows such as ``propagation_only`` are; that checks the candidates and the
outcome windows agree); otherwise the script stops and says which. The recipe's ripple_eval.v2 section sets the
bootstrap (--config / --set as in eval/ripple_v2.py). Prints the v2 summary, paired and power tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from kgfin.config import load_sections
from kgfin.evaluate.ripple import RippleEvalConfig
from kgfin.evaluate.v2 import v2_tables
from kgfin.pipeline import RECIPE_KEYS
from kgfin.tables import markdown_table

KEY = ["event_id", "variant"]


def read_run(spec: str) -> tuple[str, pd.DataFrame]:
    """``RUN[:old=new,...]`` -> (run folder, its per-event rows with the renames applied)."""
    path, _, renames = spec.partition(":")
    file = Path(path) / "v2_per_event.csv"
    if not file.exists():
        raise SystemExit(f"{file}: not found (a folder written by eval/ripple_v2.py or kgfin evaluate ripple)")
    frame = pd.read_csv(file, dtype={"event_id": str})
    mapping = dict(pair.split("=", 1) for pair in renames.split(",") if pair)
    unknown = set(mapping) - set(frame["method"])
    if unknown:
        raise SystemExit(f"{spec}: no row named {sorted(unknown)} in {file} (rows: {sorted(set(frame['method']))})")
    frame["method"] = frame["method"].replace(mapping)
    return path, frame


def combine(runs: list[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """The runs' per-event rows in one frame, each row once; raises (SystemExit) when the runs do not line up."""
    first_path, first = runs[0]
    keys = set(map(tuple, first[KEY].drop_duplicates().to_numpy()))
    kept = first
    for path, frame in runs[1:]:
        other = set(map(tuple, frame[KEY].drop_duplicates().to_numpy()))
        if other != keys:
            raise SystemExit(f"{path} scored other events than {first_path}: {len(other - keys)} (event, variant) "
                             f"pairs only in {path}, {len(keys - other)} only in {first_path}")
        metrics = [c for c in frame.columns if c.startswith("ic_h") or c in ("candidates", "refused")]
        for method in sorted(set(frame["method"]) & set(kept["method"])):
            a = kept[kept["method"] == method].set_index(KEY).sort_index()[metrics]
            b = frame[frame["method"] == method].set_index(KEY).sort_index()[metrics]
            if a.shape != b.shape or not np.allclose(a.astype(float), b.astype(float), rtol=0, atol=1e-9,
                                                     equal_nan=True):
                raise SystemExit(f"row {method!r} differs between {first_path} and {path} on the same events: not the "
                                 f"same candidates or outcomes (rename one with {path}:{method}=NEW to keep both)")
        kept = pd.concat([kept, frame[~frame["method"].isin(kept["method"])]], ignore_index=True)
    return kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="RUN or RUN:old=new,... (v2 output folders)")
    ap.add_argument("--baselines", default="propagation_only,knowledge", help="paired-test baselines, in order")
    ap.add_argument("--config", type=Path, action="append", default=[], help="recipe(s) (ripple_eval section)")
    ap.add_argument("--set", dest="set_", action="append", default=[], help="ripple_eval.KEY=VALUE (repeatable)")
    ap.add_argument("--out", type=Path, help="write v2_summary.csv, v2_paired.csv, v2_power.csv, v2.md here")
    args = ap.parse_args()
    cfg = load_sections({"ripple_eval": RippleEvalConfig}, args.config, args.set_,
                        known=RECIPE_KEYS)["ripple_eval"].v2  # a whole recipe (align, ...) may be given
    cfg = cfg.model_copy(update={"baselines": args.baselines.split(",")})
    frame = combine([read_run(spec) for spec in args.runs])
    summary, paired, power, _, _ = v2_tables(frame, cfg)
    parts = [("Ripple evaluation v2 (combined runs): mean rank IC over events (95 % bootstrap CI), paired tests",
              summary), ("Paired differences (row minus baseline, same events)", paired),
             ("Power: events needed for a difference in mean rank IC (paired, two-sided 5 %)", power)]
    text = "\n\n".join(f"## {title}\n\n{markdown_table(t, '.4g')}" for title, t in parts if len(t)) + "\n"
    print(f"# runs: {', '.join(args.runs)}; {frame['event_id'].nunique()} events\n")
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.out / "v2_per_event.csv", index=False)
        for name, table in (("summary", summary), ("paired", paired), ("power", power)):
            table.to_csv(args.out / f"v2_{name}.csv", index=False)
        (args.out / "v2.md").write_text(text)
        print(f"tables: {args.out}")


if __name__ == "__main__":
    main()
