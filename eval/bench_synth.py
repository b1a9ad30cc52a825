"""Benchmark: synthetic-market generation time and peak memory, default and large sizes.

Each size runs in a fresh subprocess so that its peak resident memory (ru_maxrss) is its own.
Prints a table; writes nothing outside a temporary directory unless --keep DIR is given.

    python eval/bench_synth.py                      # default (120 x 36) and large (6,600 x 240)
    python eval/bench_synth.py --large-months 24    # a shorter large run
    python eval/bench_synth.py --skip-large
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, sys, time
from kgfin.data.synth import SynthConfig, synthesize
cfg = SynthConfig(companies=int(sys.argv[1]), months=int(sys.argv[2]), seed=0)
t = time.perf_counter()
s = synthesize(cfg, sys.argv[3], progress=False)
print(json.dumps({"seconds": time.perf_counter() - t, "rows": s.rows}))
"""


def run(companies: int, months: int, out: Path) -> dict:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(companies), str(months), str(out)],
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # max over children so far
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    return {"companies": companies, "months": months, "generate_s": result["seconds"], "process_s": wall,
            "peak_rss_mb": peak_mb, "output_mb": size_mb, "returns_rows": result["rows"]["returns"],
            "news_rows": result["rows"]["news"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large-companies", type=int, default=6600)
    ap.add_argument("--large-months", type=int, default=240)
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--keep", type=Path, default=None, help="keep outputs under this directory")
    args = ap.parse_args()
    sizes = [(120, 36)] + ([] if args.skip_large else [(args.large_companies, args.large_months)])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        for companies, months in sizes:  # increasing size, so the running max RSS is this run's peak
            rows.append(run(companies, months, base / f"synth_{companies}x{months}"))
            r = rows[-1]
            print(f"{r['companies']:>6} companies x {r['months']:>3} months: generate {r['generate_s']:8.1f} s, "
                  f"peak RSS {r['peak_rss_mb']:7.0f} MB, output {r['output_mb']:7.0f} MB, "
                  f"{r['returns_rows']:,} return rows, {r['news_rows']:,} news", flush=True)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
