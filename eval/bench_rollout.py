"""Alignment throughput: answer tokens/s of kgfin's constrained rollout and seconds per PPO step, beside plain
batched ``model.generate`` of the same model on the same prompts (the peer figure), in one run.

    python eval/bench_rollout.py --data runs/demo/data --month 2015-02 [--batch 16] [--new-tokens 64]

Prints one table: plain ``generate`` (sampling, no grammar), kgfin's rollout with the answer grammar
(``decoding.constrained``, the first entry the news' company), and one whole PPO step (rollout, reward,
reference and policy passes, updates) on an alignment LoRA, each with tokens/s, seconds and the process's
peak resident memory. The reward is a constant here (only the cost of the loop is measured).
Timings depend on the machine and its load: compare rows of the same run.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from kgfin.align.config import AlignConfig, DecodingConfig
from kgfin.align.decoding import Decoder
from kgfin.align.events import news_events
from kgfin.data import load_market
from kgfin.llm.generate import chat_prompts
from kgfin.llm.models import load_causal_lm
from kgfin.llm.parse import Universe
from kgfin.llm.prompts import SYSTEM_PROMPT, event_messages
from kgfin.runinfo import package_versions


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="data folder of a market (news + companies)")
    ap.add_argument("--month", default="2015-02", help="news month the prompts come from")
    ap.add_argument("--batch", type=int, default=16, help="answers per rollout / PPO step")
    ap.add_argument("--new-tokens", type=int, default=64, help="max_new_tokens")
    ap.add_argument("--repeats", type=int, default=2, help="timed repetitions of each row (after one warm-up)")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    args = ap.parse_args()
    torch.manual_seed(0)

    market = load_market(args.data)
    cfg = AlignConfig(model=args.model, knowledge=False)
    cfg.ppo.batch_size, cfg.ppo.mini_batch_size, cfg.ppo.max_new_tokens = args.batch, 8, args.new_tokens
    cfg.decoding = DecodingConfig(constrained=True, first_entry="news")
    events = news_events(market, [args.month], cfg.events).head(args.batch)
    model, tok = load_causal_lm(args.model)
    universe = Universe.from_frame(market.companies)
    decoder = Decoder(cfg.decoding, universe)
    prompts = chat_prompts(tok, event_messages(events), system=SYSTEM_PROMPT, prefix=decoder.prefix)
    grammar = decoder.grammar(model, tok, args.month, args.new_tokens, event_messages)
    first = decoder.first_entries(events)
    rows: list[tuple[str, float, float, float]] = []

    def timed(name: str, fn) -> None:  # type: ignore[no-untyped-def]
        fn()  # warm-up
        secs, toks = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            n = fn()
            secs.append(time.perf_counter() - start)
            toks.append(n)
        s = sum(secs) / len(secs)
        rows.append((name, sum(toks) / sum(secs), s, _peak_mb()))

    tok.padding_side = "left"
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)

    def plain() -> int:
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=args.new_tokens, do_sample=True, temperature=0.7, top_k=0,
                                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        new = out[:, enc["input_ids"].shape[1]:]
        return int((new != tok.pad_token_id).sum())

    timed(f"plain generate (batch {args.batch}, no grammar)", plain)

    from peft import LoraConfig, get_peft_model

    from kgfin.align.ppo import PPOTrainer
    from kgfin.inject.adapters import adapters_disabled

    policy = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    trainer = PPOTrainer(policy, tok, lambda completions, **_: [0.1] * len(completions), cfg.ppo,
                         reference_context=lambda: adapters_disabled(policy), answer_prefix=decoder.prefix,
                         grammar=grammar, stop_at_json_end=True, experimental=cfg.experimental)

    def rollout() -> int:
        ro = trainer.rollout(prompts, first)
        return int(ro.response_mask.sum())

    timed("kgfin rollout (answer grammar)", rollout)
    lengths: list[int] = []

    def ppo_step() -> int:
        res = trainer.step(prompts, first_entries=first)
        n = int(round(res.stats["response_length"] * len(prompts)))
        lengths.append(n)
        return n

    timed(f"kgfin PPO step ({args.batch} answers)", ppo_step)

    print(f"# bench_rollout: {args.model}, batch {args.batch}, max_new_tokens {args.new_tokens}, "
          f"prompt {enc['input_ids'].shape[1]} tokens, {torch.get_num_threads()} threads")
    print(f"# torch {torch.__version__}, transformers {package_versions().get('transformers')}")
    print("| row | answer tokens/s | seconds | peak RSS (MB) |")
    print("|:--|--:|--:|--:|")
    for name, tps, s, mb in rows:
        print(f"| {name} | {tps:.1f} | {s:.2f} | {mb:.0f} |")


if __name__ == "__main__":
    main()
