"""The answer grammar's cost per decoding step: kgfin's hand-written token-trie walk against xgrammar (a compiled
JSON-schema engine) on the same batch of answers, replayed token by token (no model: only the masking is timed).

    python eval/bench_grammar.py --data runs/demo/data [--batch 16] [--companies 5]

Builds ``--batch`` valid answers over the market's universe (random companies and scores, tokenised as the grammar
samples them), then for each answer position times, for the whole batch: kgfin's logits processor (``generate``'s
path: mask every disallowed token, add the type bias) and xgrammar's ``fill_next_token_bitmask`` per row +
``apply_token_bitmask_inplace`` + ``accept_token``, on the same (B, V) logits. xgrammar's schema is the closest JSON
schema (company name as an enum of the universe's labels, the type as an enum, the score as a pattern, 1..companies
entries); it does not say that the score's sign follows the type or that a name appears once, which kgfin's walk
also enforces. Prints milliseconds per step beside a batched forward step of the model for scale. xgrammar is not a
kgfin dependency: ``pip install --no-deps xgrammar apache-tvm-ffi`` (its metadata asks for triton, a GPU package).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from kgfin.data import load_market
from kgfin.llm.grammar import AnswerGrammar, company_labels
from kgfin.llm.models import load_causal_lm
from kgfin.llm.prompts import ANSWER_PREFIX


def answers(grammar: AnswerGrammar, tok, labels: list[str], batch: int, companies: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(batch):
        n = int(rng.integers(1, companies + 1))
        names = rng.choice(labels, size=n, replace=False)
        scores = [int(rng.choice([-1, 1]) * rng.integers(1, 11)) for _ in range(n)]
        out.append(grammar.encode_answer(tok, list(zip(names, scores, strict=True))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="data folder of a market (its companies are the universe)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--companies", type=int, default=5, help="most companies per answer")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    market = load_market(args.data)
    model, tok = load_causal_lm(args.model)
    labels = list(company_labels(market.companies["ticker"], market.companies["name"]).values())
    grammar = AnswerGrammar(tok, labels, max_companies=args.companies, max_new_tokens=40 * args.companies)
    replies = answers(grammar, tok, labels, args.batch, args.companies, args.seed)
    width = max(len(r) for r in replies)
    vocab = model.get_output_embeddings().weight.shape[0]
    prefix = tok(ANSWER_PREFIX, add_special_tokens=False)["input_ids"]
    p = len(prefix)
    ids = torch.full((args.batch, p + width), tok.eos_token_id, dtype=torch.long)
    for r, reply in enumerate(replies):
        ids[r, :p] = torch.tensor(prefix)
        ids[r, p:p + len(reply)] = torch.tensor(reply)
    logits = torch.randn(args.batch, vocab, generator=torch.Generator().manual_seed(args.seed))

    process = grammar.logits_processor(p)
    start = time.perf_counter()
    for t in range(width):
        process(ids[:, :p + t], logits)
    ours = (time.perf_counter() - start) / width * 1000
    rows = [("kgfin hand-written walk (logits processor)", ours)]

    try:
        import xgrammar as xgr
    except ImportError:
        xgr = None
    if xgr is not None:
        schema = {"type": "object", "properties": {"impact_analysis": {
            "type": "object", "properties": {"affected_companies": {
                "type": "array", "minItems": 1, "maxItems": args.companies, "items": {
                    "type": "object", "properties": {
                        "name": {"enum": labels}, "impact_type": {"enum": ["positive", "negative"]},
                        "impact_score": {"type": "string", "pattern": "^-?(10|[1-9])$"}},
                    "required": ["name", "impact_type", "impact_score"], "additionalProperties": False}}},
            "required": ["affected_companies"], "additionalProperties": False}},
            "required": ["impact_analysis"], "additionalProperties": False}
        info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=vocab)
        t0 = time.perf_counter()
        compiled = xgr.GrammarCompiler(info).compile_json_schema(json.dumps(schema), any_whitespace=True)
        compile_ms = (time.perf_counter() - t0) * 1000
        matchers = [xgr.GrammarMatcher(compiled) for _ in range(args.batch)]
        for m in matchers:
            for token in prefix:
                if not m.accept_token(token):
                    raise SystemExit("xgrammar rejects the answer prefix: the schema and the format disagree")
        bitmask = xgr.allocate_token_bitmask(args.batch, info.vocab_size)
        rejected = 0
        start = time.perf_counter()
        for t in range(width):
            scores = logits.clone()
            for r, m in enumerate(matchers):
                if p + t < ids.shape[1] and t < len(replies[r]):
                    m.fill_next_token_bitmask(bitmask, r)
            xgr.apply_token_bitmask_inplace(scores, bitmask)
            for r, m in enumerate(matchers):
                if t < len(replies[r]):
                    rejected += not m.accept_token(int(ids[r, p + t]))
        rows.append((f"xgrammar JSON schema (compiled in {compile_ms:.0f} ms; {rejected} of kgfin's tokens rejected)",
                     (time.perf_counter() - start) / width * 1000))
    from transformers import DynamicCache

    with torch.no_grad():
        cache = DynamicCache(config=model.config)
        model(input_ids=ids[:, :p], cache=cache, use_cache=True)
        start = time.perf_counter()
        for t in range(5):
            model(input_ids=ids[:, p + t:p + t + 1], cache=cache, use_cache=True)
        step_ms = (time.perf_counter() - start) / 5 * 1000
    rows.append((f"for scale: one batched decoding step of {args.model}", step_ms))
    print(f"| grammar, batch {args.batch}, up to {args.companies} companies, {width} steps | ms per step |")
    print("|:--|--:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.1f} |")
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, universe {len(labels)} companies")


if __name__ == "__main__":
    main()
