"""A small end-to-end kgfin pipeline in Python: data -> graphs -> knowledge -> alignment -> ripple tables.

    python examples/quickstart.py                 # shipped SmolLM2-135M, about 15 minutes on 2 CPU cores
    python examples/quickstart.py --tiny          # tiny random model, about a minute (what CI runs)

Steps (each is one call of kgfin's Python API, see docs/api.md):
1. a synthetic market of 40 companies over 12 months;
2. its monthly graphs in the embedded graph store;
3. instruction pairs and a knowledge adapter for the two graph months used below;
4. PPO alignment on November's news (read with October's graph and adapter);
5. the ripple evaluation on December's news for the propagation-only, knowledge, aligned and
   oracle methods: the v2 table (every method and the v2 baselines on the same candidates, mean
   rank IC with its CI) and the paper-analogue tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import kgfin
from kgfin.evaluate.ripple import write_ripple_outputs
from kgfin.inject import read_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="run folder")
    parser.add_argument("--tiny", action="store_true", help="tiny random model and a few steps (seconds, not minutes)")
    args = parser.parse_args()
    out: Path = args.out
    model = "tiny-random-llama" if args.tiny else "smollm2-135m-instruct"

    data = out / "data"
    if not (data / "kgfin-run.json").exists():
        kgfin.synthesize(kgfin.SynthConfig(companies=40, months=12, seed=0), data, overwrite=True, progress=False)
    market = kgfin.load_market(data)

    with kgfin.open_store(out / "graph") as store:
        kgfin.build_into_store(market, store)
        read = store.read_snapshot
        stored = set(store.months())

        def snapshot_or_none(month: str) -> kgfin.GraphSnapshot | None:  # the instruction buffer looks back
            return read(month) if month in stored else None

        instruct = kgfin.InstructConfig(max_pairs_per_family=4 if args.tiny else 10, buffer_size=4)
        inject = kgfin.InjectConfig(model=model, save_steps=0, **({"max_steps": 4, "batch_size": 4} if args.tiny else {}))
        for month in ("2014-10", "2014-11"):
            path = kgfin.write_pairs(kgfin.training_pairs(month, snapshot_or_none, instruct), out / "instructions" / f"pairs-{month}.jsonl")
            info = kgfin.train_adapter(read_pairs(path), kgfin.adapter_dir(out / "adapters", month), inject, month=month,
                                       progress=False)
            print(f"knowledge adapter {month}: {info.n_pairs} pairs, {info.steps} steps, {info.seconds:.0f} s")

        align_cfg = kgfin.AlignConfig.model_validate({
            "model": model, "save_steps": 0, "events": {"max_events_per_month": 4 if args.tiny else 16},
            "ppo": {"batch_size": 2 if args.tiny else 8, "mini_batch_size": 2 if args.tiny else 4,
                    "max_new_tokens": 40 if args.tiny else 96},
            "decoding": {"max_companies": 1 if args.tiny else 3},  # the answer grammar: ~30 tokens per company
        })
        run = kgfin.align_market(align_cfg, market, read, ["2014-11"], out / "align", out / "adapters", progress=False)
        print(f"alignment: {run.steps} PPO steps, mean reward {run.log['reward'].mean():.3f} -> {run.final}")

        eval_cfg = kgfin.RippleEvalConfig(methods=["propagation_only", "knowledge", "aligned", "oracle"],
                                          max_events_per_month=6 if args.tiny else 24, temperatures=[],
                                          max_new_tokens=40 if args.tiny else 96, sentiment_months=6)
        result = kgfin.run_ripple_eval(market, read, ["2014-12"], eval_cfg, align_cfg, adapters_root=out / "adapters",
                                       aligned_dir=run.final, data_dir=data, progress=False)
    write_ripple_outputs(result, out / "ripple_eval", eval_cfg, align_cfg, ["2014-12"], command="examples/quickstart.py")
    if result.v2 is not None:
        print(result.v2.summary[["method", "events", "mean rank IC", "CI low", "CI high"]].to_string(index=False))
    print(result.tables["truth"].to_string(index=False))
    print(f"all tables: {out / 'ripple_eval' / 'tables.md'}")


if __name__ == "__main__":
    main()
