"""Benchmark: graph store load and query speed, and one month at the paper's scale.

Prints figures; writes nothing outside a temporary directory unless --keep DIR is given.

1. load   5,000 companies and 200,000 company-company relationships (random, one month,
          50,000 of each type) into a fresh embedded store: GraphStore.write_snapshot,
          which includes node MERGEs, the month's bookkeeping and the save to disk.
2. 2-hop  on that graph, medians over random companies: the 2-hop neighbourhood
          (GraphStore.neighbourhood: distinct companies within 2 hops), the same size as
          one Cypher query on the all-months graph, and the library query ripple_2hop
          (every relationship on a path of length <= 2, with type and weight).
3. paper  the synthetic market at 6,600 companies (the paper's universe) for a few months:
          build each month's snapshot, write it, report edges per type, the ratio to the
          paper's 13.8 M company-company edges per month, and the 2-hop query there.

    python eval/bench_graph.py                      # all three parts
    python eval/bench_graph.py --skip-paper         # parts 1 and 2 only
    python eval/bench_graph.py --paper-data DIR     # reuse a generated 6,600-company market
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kgfin.graph import RELATIONS, GraphConfig, GraphSnapshot, build_snapshot, data_months
from kgfin.store import FalkorStore, load_graph_tables

PAPER_EDGES_PER_MONTH = 13.8e6  # FinRipple, Table 6: average company-company edges per monthly graph
LINKS = "SUPPLIES|SHARES_DIRECTOR|CO_HELD|TECH_SIMILAR"
FIRST = f"MATCH (x:Company {{ticker: $ticker}})-[r1:{LINKS}]-(a:Company) WHERE r1.month = $month "
# the size of the 2-hop neighbourhood (companies within 2 hops, the company itself not counted)
# as one Cypher query on the all-months graph, filtering every relationship on its month
REACH = (f"CALL {{ {FIRST} RETURN a AS c UNION {FIRST} WITH DISTINCT x, a "
         f"MATCH (a)-[r2:{LINKS}]-(c:Company) WHERE r2.month = $month AND c <> x RETURN c }} "
         "RETURN count(c) AS reach")


def random_snapshot(companies: int, per_type: int, seed: int = 0) -> GraphSnapshot:
    """``companies`` firms and ``per_type`` random edges of each relation type in one month."""
    rng = np.random.default_rng(seed)
    tickers = np.array([f"T{i:05d}" for i in range(companies)], dtype=object)
    comp = pd.DataFrame({"ticker": tickers, "name": [f"Company {i}" for i in range(companies)],
                         "sector": rng.choice(["Energy", "Materials", "Industrials", "Financials"], companies)})
    attrs = {"SUPPLIES": ["value_usd", "weight", "reverse_weight"], "SHARES_DIRECTOR": ["count", "weight"],
             "CO_HELD": ["funds", "overlap", "weight"], "TECH_SIMILAR": ["similarity", "weight"]}
    edges = {}
    for rel, cols in attrs.items():
        i, j = rng.integers(0, companies, 3 * per_type), rng.integers(0, companies, 3 * per_type)
        if rel != "SUPPLIES":
            i, j = np.minimum(i, j), np.maximum(i, j)
        keep = i != j
        e = pd.DataFrame({"source": tickers[i[keep]], "target": tickers[j[keep]]}).drop_duplicates().head(per_type)
        for c in cols:
            e[c] = rng.integers(1, 5, len(e)) if c in ("count", "funds") else rng.random(len(e))
        edges[rel] = e
    return GraphSnapshot("2020-01", comp, edges)


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for k in range(repeat):
        t = time.perf_counter()
        fn(k)
        out.append(time.perf_counter() - t)
    return out


def server_ms(store: FalkorStore, fn) -> float:  # type: ignore[no-untyped-def]
    """FalkorDB's own execution time (ms) summed over the queries that ``fn()`` sends."""
    before = store.server_ms
    fn()
    return store.server_ms - before


def two_hop(store: FalkorStore, tickers: list[str], month: str) -> dict[str, float]:
    rows = []
    ripple = timed(lambda k: rows.append(len(store.run_query("ripple_2hop", {"ticker": tickers[k], "month": month}))),
                   len(tickers))
    hood_n = []
    hood = timed(lambda k: hood_n.append(len(store.neighbourhood(tickers[k], month, 2))), len(tickers))
    reach_n = []
    reach = timed(lambda k: reach_n.append(int(store.query(REACH, {"ticker": tickers[k], "month": month})["reach"][0])),
                  len(tickers))
    # FalkorDB's own execution time for the same calls (excludes transfer and decoding)
    server = {
        "ripple": [server_ms(store, lambda t=t: store.run_query("ripple_2hop", {"ticker": t, "month": month}))
                   for t in tickers],
        "hood": [server_ms(store, lambda t=t: store.neighbourhood(t, month, 2)) for t in tickers],
        "reach": [server_ms(store, lambda t=t: store.query(REACH, {"ticker": t, "month": month})) for t in tickers]}
    return {"ripple_ms": 1000 * statistics.median(ripple), "ripple_p90_ms": 1000 * float(np.quantile(ripple, 0.9)),
            "ripple_rows": statistics.median(rows), "hood_ms": 1000 * statistics.median(hood),
            "hood_p90_ms": 1000 * float(np.quantile(hood, 0.9)), "hood_companies": statistics.median(hood_n),
            "reach_ms": 1000 * statistics.median(reach), "same_size": hood_n == reach_n,
            **{f"{k}_server_ms": statistics.median(v) for k, v in server.items()}}


def print_two_hop(h: dict[str, float], indent: str = "   ") -> None:
    print(f"{indent}2-hop neighbourhood size query (GraphStore.neighbourhood on the month graph): median "
          f"{h['hood_ms']:.1f} ms, p90 {h['hood_p90_ms']:.1f} ms (server {h['hood_server_ms']:.1f} ms over its "
          f"3 queries), {h['hood_companies']:,.0f} companies within 2 hops; target <= 20 ms")
    print(f"{indent}the same size as one Cypher query on the all-months graph (month filter on every "
          f"relationship): median {h['reach_ms']:.1f} ms (server {h['reach_server_ms']:.1f} ms); "
          f"equal sizes: {'yes' if h['same_size'] else 'NO'}")
    print(f"{indent}ripple_2hop query: median {h['ripple_ms']:.1f} ms, p90 {h['ripple_p90_ms']:.1f} ms "
          f"(server {h['ripple_server_ms']:.1f} ms), {h['ripple_rows']:,.0f} rows (relationships) per answer")


def part_load(base: Path, repeats: int) -> None:
    snap = random_snapshot(5000, 50_000)
    n_rel = snap.stats().total_edges
    print(f"\n1. load: {len(snap.companies):,} companies, {n_rel:,} company-company relationships, one month")
    secs = []
    for r in range(repeats):
        with FalkorStore(base / f"load{r}") as store:
            store.ensure_schema()  # an empty store, as after `kgfin graph serve`
            secs.append(store.write_snapshot(snap).seconds)
            if r == repeats - 1:
                again = store.write_snapshot(snap).seconds
                print(f"   write_snapshot: {', '.join(f'{s:.2f}' for s in secs)} s (median {statistics.median(secs):.2f} s; "
                      f"target <= 5 s); rewriting the same month: {again:.2f} s")
                rng = np.random.default_rng(1)
                picks = [str(t) for t in rng.choice(snap.tickers, 50, replace=False)]
                h = two_hop(store, picks, snap.month)
                print(f"\n2. 2-hop on that graph (50 companies, average degree {2 * n_rel / len(snap.companies):.0f}):")
                print_two_hop(h)


def part_paper(base: Path, data: Path | None, months: int) -> None:
    if data is None:
        from kgfin.data.synth import SynthConfig, synthesize

        data = base / "synth6600"
        t = time.perf_counter()
        synthesize(SynthConfig(companies=6600, months=months, seed=0), data, progress=False)
        print(f"\n3. paper scale: synthetic market 6,600 companies x {months} months generated in "
              f"{time.perf_counter() - t:.0f} s")
    else:
        print(f"\n3. paper scale: data from {data}")
    market = load_graph_tables(data)
    cfg = GraphConfig()
    print(f"   projection: TECH_SIMILAR corr >= {cfg.tech_threshold}, top {cfg.tech_top_k} per firm "
          f"(min {cfg.tech_min_patents} patents in {cfg.tech_window_months} months); CO_HELD top "
          f"{cfg.co_held_top_k} partners by overlap; SUPPLIES and SHARES_DIRECTOR as observed")
    header = f"   {'month':8s} {'build s':>8s} {'write s':>8s} " + " ".join(f"{r:>15s}" for r in RELATIONS) + \
             f" {'total':>9s} {'facts':>9s} {'x paper':>8s}"
    print(header)
    with FalkorStore(base / "paper") as store:
        for month in data_months(market)[:months]:
            t = time.perf_counter()
            snap = build_snapshot(market, month, cfg)
            build_s = time.perf_counter() - t
            w = store.write_snapshot(snap)
            st = snap.stats()
            facts = st.seats + st.holdings + len(snap.cpc)
            print(f"   {month:8s} {build_s:8.1f} {w.seconds:8.1f} " + " ".join(f"{st.edges[r]:>15,}" for r in RELATIONS)
                  + f" {st.total_edges:>9,} {facts:>9,} {PAPER_EDGES_PER_MONTH / st.total_edges:>7.0f}x")
        print(f"   pairs linked by 1 / 2 / 3+ relation types (last month): {st.share_1:.1%} / {st.share_2:.1%} / "
              f"{st.share_3plus:.1%}; all pairs would be {6600 * 6599 // 2:,}")
        rng = np.random.default_rng(2)
        h = two_hop(store, [str(t) for t in rng.choice(snap.tickers, 50, replace=False)], snap.month)
        print(f"   2-hop there ({months} months in the store):")
        print_two_hop(h, "     ")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="fresh stores loaded in part 1")
    ap.add_argument("--skip-paper", action="store_true")
    ap.add_argument("--paper-data", type=Path, default=None, help="an existing 6,600-company data directory")
    ap.add_argument("--paper-months", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="keep the stores under this directory")
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"kgfin graph benchmark: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        part_load(base, args.repeats)
        if not args.skip_paper:
            part_paper(base, args.paper_data, args.paper_months)
    load = os.getloadavg()
    print(f"\nload average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")


if __name__ == "__main__":
    main()
