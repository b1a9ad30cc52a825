"""Alignment throughput: answer tokens/s of kgfin's constrained rollout and seconds per PPO step, beside plain
batched ``model.generate`` of the same model on the same prompts (the peer figure), in one run.

    python eval/bench_rollout.py --data runs/demo/data --month 2015-02 [--batch 16] [--new-tokens 64]

Prints one table, for the settings before this issue (the full prompt with its JSON format line, one answer
per news item, two PPO epochs of minibatches of 4) and after (no format line under the grammar, 4 answers per
news item sharing one prefill, one update per rollout): plain ``generate`` on the same prompts (sampling, no
grammar: the peer figure), the answer grammar token by token (``generate`` with its logits processor, as kgfin
decoded before jump-forward), kgfin's rollout with the answer grammar (``decoding.constrained``, the first entry
the news' company; jump-forward over the tokens the grammar forces), and one whole PPO step (rollout, reward, reference and policy passes, update) on an
alignment LoRA; each with answer tokens/s, seconds and the peak resident memory of the process while the row's
timed repeats ran (model weights included). The reward is a
constant here (only the cost of the loop is measured).
Timings depend on the machine and its load: compare rows of the same run.
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time

import torch
from transformers import LogitsProcessorList, StoppingCriteriaList

from kgfin.align.config import AlignConfig, DecodingConfig
from kgfin.align.decoding import Decoder
from kgfin.align.events import news_events
from kgfin.data import load_market
from kgfin.llm.generate import StopAtJsonEnd, chat_prompts
from kgfin.llm.models import load_causal_lm
from kgfin.llm.parse import Universe
from kgfin.llm.prompts import SYSTEM_PROMPT
from kgfin.runinfo import package_versions


class _PeakRSS:
    """Peak resident memory (MB) of this process while the block runs, sampled every 10 ms from /proc (Linux;
    elsewhere the process's lifetime peak from ``getrusage``), so that each row reports its own peak."""

    def __enter__(self) -> _PeakRSS:
        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE") / 2**20
        while not self._stop.is_set():
            try:
                with open("/proc/self/statm") as f:
                    self.peak = max(self.peak, int(f.read().split()[1]) * page)
            except OSError:
                self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            self._stop.wait(0.01)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="data folder of a market (news + companies)")
    ap.add_argument("--month", default="2015-02", help="news month the prompts come from")
    ap.add_argument("--batch", type=int, default=16, help="answers per rollout / PPO step")
    ap.add_argument("--new-tokens", type=int, default=64, help="max_new_tokens")
    ap.add_argument("--repeats", type=int, default=2, help="timed repetitions of each row (after one warm-up)")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--settings", default="before,after", help="which settings to run (comma-separated)")
    args = ap.parse_args()
    torch.manual_seed(0)

    from peft import LoraConfig, get_peft_model

    from kgfin.align.config import ExperimentalConfig, PPOConfig
    from kgfin.align.ppo import PPOTrainer
    from kgfin.inject.adapters import adapters_disabled

    market = load_market(args.data)
    model, tok = load_causal_lm(args.model)
    universe = Universe.from_frame(market.companies)
    rows: list[tuple[str, float, float, float]] = []
    print("| row | answer tokens/s | seconds | peak RSS (MB) |")
    print("|:--|--:|--:|--:|", flush=True)

    def timed(name: str, fn) -> None:  # type: ignore[no-untyped-def]
        fn()  # warm-up
        secs, toks = [], []
        with _PeakRSS() as rss:
            for _ in range(args.repeats):
                start = time.perf_counter()
                toks.append(fn())
                secs.append(time.perf_counter() - start)
        rows.append((name, sum(toks) / sum(secs), sum(secs) / len(secs), rss.peak))
        print(f"| {name} | {rows[-1][1]:.1f} | {rows[-1][2]:.2f} | {rows[-1][3]:.0f} |", flush=True)

    policy = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    # before: the issue-6 settings (full prompt, one answer per news item, 2 PPO epochs of minibatches of 4);
    # after: no format line under the grammar, 4 answers per news item sharing its prefill, one update per rollout
    settings = {
        "before": dict(format_in_prompt=True, k=1, epochs=2, mini=4),
        "after": dict(format_in_prompt=False, k=4, epochs=1, mini=args.batch),
    }
    lengths = {}
    chosen = args.settings.split(",")
    unknown = set(chosen) - set(settings)
    if unknown:
        ap.error(f"--settings: unknown {sorted(unknown)}; choose from {sorted(settings)}")
    for label, st in ((k, settings[k]) for k in chosen):
        decoding = DecodingConfig(constrained=True, first_entry="news", format_in_prompt=st["format_in_prompt"])
        decoder = Decoder(decoding, universe)
        events = news_events(market, [args.month], AlignConfig().events).head(args.batch // st["k"])
        events = events.loc[events.index.repeat(st["k"])].reset_index(drop=True)
        prompts = chat_prompts(tok, decoder.messages(events), system=SYSTEM_PROMPT, prefix=decoder.prefix)
        grammar = decoder.grammar(model, tok, args.month, args.new_tokens, decoder.messages)
        first = decoder.first_entries(events)
        tok.padding_side = "left"
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        lengths[label] = enc["input_ids"].shape[1]

        def plain(enc=enc) -> int:  # type: ignore[no-untyped-def]
            with torch.no_grad(), adapters_disabled(policy):
                out = policy.generate(**enc, max_new_tokens=args.new_tokens, do_sample=True, temperature=0.7,
                                      top_k=0, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
            new = out[:, enc["input_ids"].shape[1]:]
            return int((new != tok.pad_token_id).sum())

        timed(f"{label}: plain generate, batch {args.batch}, no grammar ({lengths[label]}-token prompts)", plain)
        ppo = PPOConfig(batch_size=args.batch, mini_batch_size=st["mini"], ppo_epochs=st["epochs"],
                        max_new_tokens=args.new_tokens)
        trainer = PPOTrainer(policy, tok, lambda completions, **_: [0.1] * len(completions), ppo,
                             reference_context=lambda: adapters_disabled(policy), answer_prefix=decoder.prefix,
                             grammar=grammar, stop_at_json_end=True,
                             experimental=ExperimentalConfig(samples_per_prompt=st["k"]))
        unique = prompts[::st["k"]]
        unique_first = None if first is None else first[::st["k"]]

        def rollout(trainer=trainer, prompts=prompts, first=first) -> int:  # type: ignore[no-untyped-def]
            return int(trainer.rollout(prompts, first).response_mask.sum())

        def step(trainer=trainer, unique=unique, unique_first=unique_first) -> int:  # type: ignore[no-untyped-def]
            res = trainer.step(unique, first_entries=unique_first)
            return int(round(res.stats["response_length"] * args.batch))

        def token_by_token(enc=enc, grammar=grammar, first=first, prefix=decoder.prefix) -> int:  # type: ignore[no-untyped-def]
            rows = grammar if first is None else grammar.with_first_entries(first)
            p = enc["input_ids"].shape[1]
            stop = StopAtJsonEnd(tok, p, len(enc["input_ids"]), prefix)
            with torch.no_grad():
                policy.generate(**enc, max_new_tokens=args.new_tokens, do_sample=True, temperature=0.7,
                                      top_k=0, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                                      logits_processor=LogitsProcessorList([rows.logits_processor(p)]),
                                      stopping_criteria=StoppingCriteriaList([stop]))
            return sum(n if n is not None else args.new_tokens for n in stop.stopped_at)

        timed(f"{label}: the grammar token by token (generate + its logits processor)", token_by_token)
        timed(f"{label}: kgfin rollout with the answer grammar (jump-forward)", rollout)
        timed(f"{label}: kgfin PPO step, {args.batch} answers (epochs {st['epochs']}, minibatch {st['mini']}, "
              f"{st['k']} per prompt)", step)

    print(f"# bench_rollout: {args.model}, batch {args.batch}, max_new_tokens {args.new_tokens}, "
          f"{torch.get_num_threads()} threads, {args.repeats} timed repeats after a warm-up; load average "
          f"{os.getloadavg()[0]:.1f} at the end; prompt tokens {lengths}")
    print(f"# torch {torch.__version__}, transformers {package_versions().get('transformers')}")


if __name__ == "__main__":
    main()
