"""Bring your own data: public-source files -> kgfin tables -> a month graph -> Cypher answers.

    python examples/import_public.py                       # the small fixtures shipped with the tests
    python examples/import_public.py --out runs/public --month 2024-03

Steps (each one call of kgfin's Python API, see docs/data-formats.md "From public sources"):
1. a data directory with companies.csv (kgfin's own format: ticker, name, sector);
2. every importer on files in its source's own layout: SEC Form 13F and insider data sets,
   PatentsView, a Kenneth French factor file, FNSPID-style news and JSONL, long and wide
   prices, a customer-supplier CSV; each prints what it wrote and every row it left out;
3. validation of the whole directory;
4. the month's graph in the embedded graph store, and three named Cypher queries.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import kgfin
from kgfin.data.importers import (
    import_13f,
    import_french_factors,
    import_insiders,
    import_news,
    import_patentsview,
    import_prices,
    import_supply_links,
    patentsview_files,
)

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "public"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=FIXTURES, help="folder laid out like tests/fixtures/public")
    parser.add_argument("--out", type=Path, default=Path("runs/import-public"), help="run folder")
    parser.add_argument("--month", default="2024-03", help="graph month YYYY-MM")
    args = parser.parse_args()
    src, out, month = args.src, args.out, args.month

    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "companies.csv", data / "companies.csv")
    reports = [
        import_13f([src / "sec13f" / "2024q1"], src / "cusip_map.csv", data),
        import_insiders([src / "insiders" / "2024q1"], data),
        import_patentsview(*patentsview_files(src / "patentsview"), src / "patentsview" / "name_map.csv", data),
        import_french_factors(src / "french" / "F-F_Research_Data_Factors.CSV", data),
        import_french_factors(src / "french" / "F-F_Research_Data_5_Factors_2x3_daily.CSV", data),
        import_news([src / "news_fnspid.csv", src / "news.jsonl"], data),
        import_prices([src / "prices_long.csv", src / "prices_wide.csv"], data),
        import_supply_links(src / "supply_links.csv", data, until="2024-06"),
    ]
    for report in reports:
        print(report.summary())

    problems = [p for p in kgfin.validate_dir(data) if p.severity == "error"]  # warnings do not stop it
    if problems:
        raise SystemExit("\n".join(str(p) for p in problems))
    market = kgfin.load_market(data)
    print(f"validated: {', '.join(market.present())}")

    with kgfin.open_store(out / "graph", env_file=None) as store:
        kgfin.build_into_store(market, store, [month])
        snap = store.read_snapshot(month)
        print(f"graph {month}: {len(snap.companies)} companies, {snap.stats().total_edges} edges")
        for name, params in [
            ("directors_linking", {"x": "AAPL", "y": "MSFT", "month": month}),
            ("common_funds", {"x": "AAPL", "y": "MSFT", "month": month}),
            ("suppliers", {"ticker": "MSFT", "month": month}),
        ]:
            answer = store.run_query(name, params)
            print(f"\n{name} {params}:\n{answer.to_string(index=False)}")


if __name__ == "__main__":
    main()
