"""A small knowledge-injection run on the shipped SmolLM2-135M (real model, CPU; part of `make test`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgfin.inject import InjectConfig, adapter_dir, attach_adapters, train_adapter
from kgfin.inject.memory import score_answer
from kgfin.llm import DEFAULT_MODEL, generate_replies, load_causal_lm

pytestmark = pytest.mark.integration

PAIRS = [
    {"instruction": "Which companies supplied Zorbit Dynamics (ZRB) in 2014-06?", "output": "Quellin Foods (QLF)",
     "family": "retrieval", "answer_type": "list"},
    {"instruction": "Do Zorbit Dynamics (ZRB) and Varnel Mining (VRN) share a director in 2014-06?", "output": "Yes",
     "family": "judgment", "answer_type": "yesno"},
    {"instruction": "How many directors do Varnel Mining (VRN) and Quellin Foods (QLF) share in 2014-06?",
     "output": "3", "family": "question", "answer_type": "number"},
    {"instruction": "Which companies supplied Varnel Mining (VRN) in 2014-06?", "output": "Ostrava Tools (OST)",
     "family": "retrieval", "answer_type": "list"},
]


def test_small_real_run_learns_its_pairs(tmp_path: Path) -> None:
    cfg = InjectConfig(model=DEFAULT_MODEL, max_steps=16, batch_size=4, save_steps=0, logging_steps=1, seed=0)
    info = train_adapter(PAIRS, adapter_dir(tmp_path, "2014-06"), cfg, month="2014-06", progress=False)
    assert info.steps == 16 and 0.01 < info.trainable_share < 0.05
    log = [json.loads(x) for x in (Path(info.path) / "training_log.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in log if "loss" in e]
    assert losses[-1] < 0.2 * losses[0]
    base, tok = load_causal_lm(DEFAULT_MODEL)
    model = attach_adapters(base, {"2014-06": info.path})
    replies = generate_replies(model, tok, [p["instruction"] for p in PAIRS], max_new_tokens=16)
    exact = [score_answer(r, p)[0] for r, p in zip(replies, PAIRS, strict=True)]
    assert sum(exact) >= 3, replies
