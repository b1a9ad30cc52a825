"""Constrained decoding: every path through the answer grammar is a valid, parseable answer."""

from __future__ import annotations

import copy
import json
import random

import pytest
import torch

from kgfin.llm.grammar import (
    IMPACT_TYPES,
    SLOT_NAME,
    SLOT_SCORE,
    SLOT_TYPE,
    AnswerGrammar,
    GrammarError,
)
from kgfin.llm.parse import Universe, parse_impacts
from kgfin.llm.prompts import ANSWER_PREFIX

UNIVERSE = Universe(("ALP", "ALB", "BET", "GAM"), ("Alpha Power", "Alpha Bank", "Beta Mining", "Gamma & Sons"))


@pytest.fixture(scope="module")
def tiny():
    from kgfin.llm.models import TINY_MODEL, load_causal_lm

    return load_causal_lm(TINY_MODEL, seed=0)


def _grammar(tok, **kwargs) -> AnswerGrammar:
    return AnswerGrammar.for_universe(tok, UNIVERSE.tickers, UNIVERSE.names, **kwargs)


@pytest.mark.parametrize("max_new_tokens", [30, 64, 200])
def test_random_walks_are_valid_answers_within_the_token_limit(tiny, max_new_tokens: int) -> None:
    _, tok = tiny
    grammar = _grammar(tok, max_companies=3, max_new_tokens=max_new_tokens)
    rng = random.Random(0)
    counts = set()
    for _ in range(60):
        ids: list[int] = []
        while True:
            allowed = grammar.allowed_after(ids)
            assert allowed, "the grammar never leaves a reply without a next token"
            token = rng.choice(allowed)
            if token == tok.eos_token_id:
                break
            ids.append(token)
        assert len(ids) <= max_new_tokens  # the JSON closes within the limit
        text = ANSWER_PREFIX + tok.decode(ids)
        data = json.loads(text)  # strict JSON, no repair needed
        items = data["impact_analysis"]["affected_companies"]
        assert 1 <= len(items) <= 3
        names = [x["name"] for x in items]
        assert len(set(names)) == len(names)  # no company twice
        assert {x["impact_type"] for x in items} <= set(IMPACT_TYPES)
        assert all(-10 <= int(x["impact_score"]) <= 10 for x in items)
        # the score's sign follows the impact type
        assert all(int(x["impact_score"]) * (1 if x["impact_type"] == "positive" else -1) > 0 for x in items)
        impacts = parse_impacts(text, UNIVERSE)
        assert not impacts.refused and len(impacts.scores) == len(items)
        counts.add(len(items))
    if max_new_tokens == 200:
        assert counts == {1, 2, 3}  # every length up to max_companies is reachable


def test_strays_and_limits(tiny) -> None:
    _, tok = tiny
    grammar = _grammar(tok, max_new_tokens=64)
    # each slot's text tokenised on its own, as the grammar's tries are
    ok = [t for part in ('Beta Mining (BET)", "impact_type": "', 'negative", "impact_score": "', '-3"}]}}')
          for t in tok(part, add_special_tokens=False)["input_ids"]]
    for k in range(len(ok)):
        assert ok[k] in grammar.allowed_after(ok[:k])
    assert grammar.allowed_after(ok) == [tok.eos_token_id]  # closed: only EOS
    at_score = len(ok) - len(tok('-3"}]}}', add_special_tokens=False)["input_ids"])
    digits = tok("3", add_special_tokens=False)["input_ids"]
    assert digits[0] not in grammar.allowed_after(ok[:at_score])  # after "negative" no rise
    # the mask PPO uses: at each reply position the allowed set; everything past the reply
    ids = torch.tensor([ok + [0, 0]])
    valid = torch.tensor([[1] * len(ok) + [0, 0]])
    choices = grammar.sampler_choices(ids, valid)
    mask = choices.dense(ids, valid, len(tok))[0]
    for k in range(len(ok)):
        assert mask[0, k].nonzero().flatten().tolist() == sorted(grammar.allowed_after(ok[:k]))
    assert mask[0, len(ok):].all()
    forced = [k for k in range(len(ok)) if len(grammar.allowed_after(ok[:k])) == 1]
    assert sorted(set(range(len(ok))) - set(choices.positions.tolist())) == forced  # the sparse form lists the rest
    assert choices.vocab[choices.taken].tolist() == [ok[k] for k in choices.positions.tolist()]
    # what each choice decides: the type slot's choice is the direction's first token, the rest by slot position
    name_end = len(tok('Beta Mining (BET)", "impact_type": "', add_special_tokens=False)["input_ids"])
    type_end = name_end + len(tok('negative", "impact_score": "', add_special_tokens=False)["input_ids"])
    expect = [SLOT_NAME if k < name_end else SLOT_TYPE if k < type_end else SLOT_SCORE
              for k in choices.positions.tolist()]
    assert choices.slots.tolist() == expect and SLOT_TYPE in expect and set(choices.entries.tolist()) == {0}
    at_score = [k for k in range(len(ok)) if len(grammar.allowed_after(ok[:k])) > 1][-1]
    wrong = [t for t in range(len(tok)) if t not in grammar.allowed_after(ok[:at_score])][0]
    with pytest.raises(GrammarError, match=f"position {at_score}"):
        grammar.sampler_choices(torch.tensor([ok[:at_score] + [wrong]]), torch.ones(1, at_score + 1))
    stray = tok("Delta Corp", add_special_tokens=False)["input_ids"]
    assert grammar.allowed_after(stray) == [tok.eos_token_id]
    with pytest.raises(GrammarError, match="too small"):
        _grammar(tok, max_new_tokens=10)
    with pytest.raises(GrammarError, match="prefixes"):  # an impact type whose text runs on into another's
        AnswerGrammar(tok, ["Alpha (A)"], impact_types=["a", 'a", "impact_score": "1'])


def test_generated_replies_are_valid_answers(tiny) -> None:
    from kgfin.llm.generate import generate_replies

    model, tok = tiny
    grammar = _grammar(tok, max_new_tokens=48)
    for temperature in (0.0, 1.0):
        replies = generate_replies(model, tok, ["Which companies move?"] * 4, max_new_tokens=48, prefix=ANSWER_PREFIX,
                                   stop_at_json_end=True, grammar=grammar, temperature=temperature)
        assert all(not parse_impacts(r, UNIVERSE).refused for r in replies)
        assert all(r.endswith("}]}}") for r in replies)


def test_type_bias_moves_only_the_first_type_decision(tiny) -> None:
    from transformers import LogitsProcessorList

    from kgfin.llm.generate import generate_replies

    model, tok = tiny
    plain = _grammar(tok, max_new_tokens=48)
    biased = plain.with_type_bias({"negative": 50.0})
    assert plain.first_type_bias == {} and biased.first_type_bias == {plain.type_first_tokens["negative"]: 50.0}
    replies = generate_replies(model, tok, ["Which companies move?"] * 4, max_new_tokens=48, prefix=ANSWER_PREFIX,
                               stop_at_json_end=True, grammar=biased)
    assert all(json.loads(r)["impact_analysis"]["affected_companies"][0]["impact_type"] == "negative" for r in replies)
    # the bias sits where the first entry's type is decided and nowhere else; the processor also masks like the grammar
    ok = [t for part in ('Beta Mining (BET)", "impact_type": "', 'negative", "impact_score": "', '-3"}, {"name": "',
                         'Alpha Bank (ALB)", "impact_type": "', 'negative", "impact_score": "', '-1"}]}}')
          for t in tok(part, add_special_tokens=False)["input_ids"]]
    at_type = len(tok('Beta Mining (BET)", "impact_type": "', add_special_tokens=False)["input_ids"])
    reply, valid = torch.tensor([ok]), torch.ones(1, len(ok))
    bias = biased.sampler_choices(reply, valid).dense(reply, valid, len(tok))[1]
    assert bias.nonzero().tolist() == [[0, at_type, plain.type_first_tokens["negative"]]]
    assert plain.sampler_choices(reply, valid).bias is None
    process = LogitsProcessorList([biased.logits_processor(2)])
    scores = process(torch.tensor([[7, 7, *ok[:at_type]]]), torch.zeros(1, len(tok)))
    allowed = sorted(biased.allowed_after(ok[:at_type]))
    assert torch.isfinite(scores[0]).nonzero().flatten().tolist() == allowed
    assert scores[0, plain.type_first_tokens["negative"]] == 50.0
    with pytest.raises(GrammarError, match="unknown impact types"):
        plain.with_type_bias({"neutral": 1.0})
    with pytest.raises(GrammarError, match="finite"):
        plain.with_type_bias({"negative": float("nan")})


def test_ppo_takes_log_probs_with_the_type_bias() -> None:
    """PPO's forward pass adds the bias the sampler added: a type the bias makes certain has log-probability 0."""
    from toy_lm import char_lm

    from kgfin.align.ppo import PPOConfig, PPOTrainer

    model, tok = char_lm(0)
    grammar = _grammar(tok, max_companies=1, max_new_tokens=80)
    cfg = PPOConfig(batch_size=8, mini_batch_size=8, max_new_tokens=80, temperature=1.0)
    prompt = ["Which companies move? " + ANSWER_PREFIX] * 8
    for bias, certain in ((0.0, False), (60.0, True)):
        trainer = PPOTrainer(model, tok, lambda completions, **_: [0.0] * len(completions), cfg,
                             reference_model=copy.deepcopy(model), answer_prefix=ANSWER_PREFIX, stop_at_json_end=True,
                             grammar=grammar.with_type_bias({"negative": bias}))
        ro = trainer.rollout(prompt)
        logp, _ = trainer._forward(model, ro)
        response = ro.input_ids[:, ro.prompt_length:]
        marked = grammar.with_type_bias({"negative": 1.0}).sampler_choices(response, ro.response_mask)
        at_type = marked.dense(response, ro.response_mask, len(tok))[1].sum(-1) != 0  # where the type is decided
        assert int(at_type.sum()) == 8  # one type decision per answer
        assert (ro.choices.bias is not None) == certain
        if certain:
            assert all('"negative"' in c for c in ro.completions)
            assert torch.allclose(logp[at_type], torch.zeros(8), atol=1e-4)
        else:
            assert (logp[at_type] < -1e-3).all()


@pytest.mark.parametrize("samples_per_prompt", [1, 2])
def test_ppo_choice_log_probs_equal_the_dense_masked_softmax(samples_per_prompt: int) -> None:
    """The sparse path (output layer on the grammar's choices and their allowed tokens only) gives the log-probs and
    gradients of the dense one (all logits, type bias, temperature, disallowed tokens at -inf), whole batch and
    minibatch rows, with and without the shared prompt cache."""
    from toy_lm import char_lm

    from kgfin.align.config import ExperimentalConfig
    from kgfin.align.ppo import PPOConfig, PPOTrainer

    model, tok = char_lm(0)
    grammar = _grammar(tok, max_companies=3, max_new_tokens=80, type_bias={"negative": 0.7})
    cfg = PPOConfig(batch_size=4, mini_batch_size=4, max_new_tokens=80, temperature=1.3)
    trainer = PPOTrainer(model, tok, lambda completions, **_: [0.0] * len(completions), cfg,
                         reference_model=copy.deepcopy(model), answer_prefix=ANSWER_PREFIX, grammar=grammar,
                         stop_at_json_end=True, experimental=ExperimentalConfig(samples_per_prompt=samples_per_prompt))
    prompts = [f"Which companies move {'?' * (1 + k // samples_per_prompt)} " + ANSWER_PREFIX for k in range(4)]
    ro = trainer.rollout(prompts)
    reply, valid = ro.input_ids[:, ro.prompt_length:], ro.response_mask
    allowed, bias = ro.choices.dense(reply, valid, len(tok))
    assert bias is not None and ((allowed.sum(-1) > 1) & valid.bool()).sum() == len(ro.choices.rows)

    def dense(rows: torch.Tensor) -> torch.Tensor:
        att = ro.attention_mask[rows]
        logits = model(input_ids=ro.input_ids[rows], attention_mask=att,
                       position_ids=(att.cumsum(1) - 1).clamp(min=0)).logits[:, ro.prompt_length - 1:-1]
        scores = ((logits + bias[rows]) / 1.3).masked_fill(~allowed[rows], -torch.inf)
        return torch.log_softmax(scores, -1).gather(-1, reply[rows, :, None]).squeeze(-1) * valid[rows]

    for rows in (torch.arange(4), torch.tensor([3, 1])):
        whole = len(rows) == 4
        model.zero_grad()
        want = dense(rows)
        want.sum().backward()
        want_grad = [q.grad.clone() for q in model.parameters()]
        model.zero_grad()
        got = trainer._forward(model, ro, slice(None) if whole else rows)[0] * valid[rows]
        got.sum().backward()
        assert torch.allclose(got, want, atol=1e-5)
        assert all(torch.allclose(g.grad, w, atol=1e-5) for g, w in zip(model.parameters(), want_grad, strict=True))


def test_ppo_learns_a_sign_under_the_grammar() -> None:
    """A constrained bandit: the reward is minus the mean score the answer gives (/10), so the optimum scores every
    company -10. Forced tokens (the only one allowed) carry log-probability 0, so only the choices are trained."""
    from toy_lm import char_lm

    from kgfin.align.ppo import PPOConfig, PPOTrainer

    model, tok = char_lm(0)
    ref = copy.deepcopy(model)
    for p in ref.parameters():
        p.requires_grad_(False)

    def reward(completions: list[str], **_: object) -> list[float]:
        scores = [parse_impacts(ANSWER_PREFIX + c, UNIVERSE).scores.values() for c in completions]
        return [-sum(s) / len(s) / 10 for s in scores]

    cfg = PPOConfig(batch_size=16, mini_batch_size=8, learning_rate=5e-3, max_new_tokens=80, kl_coef=0.0,
                    temperature=1.0, seed=0)
    trainer = PPOTrainer(model, tok, reward, cfg, reference_model=ref, answer_prefix=ANSWER_PREFIX, stop_at_json_end=True,
                         grammar=_grammar(tok, max_companies=2, max_new_tokens=80))
    prompt = ["Which companies move? " + ANSWER_PREFIX] * 16
    ro = trainer.rollout(prompt)
    assert all(not parse_impacts(ANSWER_PREFIX + c, UNIVERSE).refused for c in ro.completions)
    logp, _ = trainer._forward(model, ro)
    allowed = ro.choices.dense(ro.input_ids[:, ro.prompt_length:], ro.response_mask, len(tok))[0]
    forced = (allowed.sum(-1) == 1) & ro.response_mask.bool()
    assert forced.any() and torch.allclose(logp[forced], torch.zeros(int(forced.sum())), atol=1e-5)
    scores = [trainer.step(prompt).stats["score"] for _ in range(30)]
    # (a median: once every answer earns the same, whitened advantages are noise and a step can dip)
    assert sum(scores[:3]) / 3 < 0.3 and sorted(scores[-10:])[5] > 0.85, " ".join(f"{s:.2f}" for s in scores)


def test_first_entries_restrict_each_rows_first_company_only(tiny) -> None:
    from kgfin.llm.generate import generate_replies

    model, tok = tiny
    grammar = _grammar(tok, max_companies=3, max_new_tokens=80)
    rows = [{"Beta Mining (BET)"}, {"Alpha Bank (ALB)", "Gamma & Sons (GAM)"}, None]
    per_row = grammar.with_first_entries(rows)
    assert grammar.first_entries is None  # the copy carries the rows, the grammar stays free
    rng = random.Random(0)
    for row, first in enumerate(rows):
        seen_later = set()
        for _ in range(25):
            ids: list[int] = []
            while (token := rng.choice(per_row.allowed_after(ids, row))) != tok.eos_token_id:
                ids.append(token)
            names = [x["name"] for x in json.loads(ANSWER_PREFIX + tok.decode(ids))["impact_analysis"]["affected_companies"]]
            assert first is None or names[0] in first
            seen_later |= set(names[1:])
        if first is not None:
            assert seen_later - first  # later entries may name other companies
    replies = generate_replies(model, tok, ["Which companies move?"] * 5, max_new_tokens=80, prefix=ANSWER_PREFIX,
                               stop_at_json_end=True, grammar=grammar, batch_size=2, temperature=1.0,
                               first_entries=[{"Gamma & Sons (GAM)"}, None, {"Alpha Power (ALP)"},
                                              {"Beta Mining (BET)"}, {"Alpha Bank (ALB)"}])
    firsts = [json.loads(r)["impact_analysis"]["affected_companies"][0]["name"] for r in replies]
    assert firsts[0] == "Gamma & Sons (GAM)" and firsts[2:] == ["Alpha Power (ALP)", "Beta Mining (BET)",
                                                                 "Alpha Bank (ALB)"]
    with pytest.raises(GrammarError, match="row 1.*not in the grammar"):
        grammar.with_first_entries([None, {"Delta (DEL)"}])
    with pytest.raises(GrammarError, match="row 0: empty"):
        grammar.with_first_entries([set()])
    with pytest.raises(ValueError, match="one item per message"):
        generate_replies(model, tok, ["Which companies move?"] * 2, prefix=ANSWER_PREFIX, grammar=grammar,
                         first_entries=[None])


def test_ppo_masks_follow_each_rows_first_entry() -> None:
    """PPO samples and takes log-probs under the same per-row restriction: the first name is forced where a row
    allows one company, so its tokens carry log-probability 0."""
    from toy_lm import char_lm

    from kgfin.align.config import ExperimentalConfig
    from kgfin.align.ppo import PPOConfig, PPOTrainer

    model, tok = char_lm(0)
    grammar = _grammar(tok, max_companies=2, max_new_tokens=80)
    cfg = PPOConfig(batch_size=4, mini_batch_size=4, max_new_tokens=80, temperature=1.0)
    trainer = PPOTrainer(model, tok, lambda completions, **_: [0.0] * len(completions), cfg,
                         reference_model=copy.deepcopy(model), answer_prefix=ANSWER_PREFIX, grammar=grammar,
                         stop_at_json_end=True, experimental=ExperimentalConfig(samples_per_prompt=2))
    prompt = ["Which companies move? " + ANSWER_PREFIX] * 4
    ro = trainer.rollout(prompt, [{"Beta Mining (BET)"}, None, {"Gamma & Sons (GAM)"}, None])
    firsts = [parse_impacts(ANSWER_PREFIX + c, UNIVERSE).scores for c in ro.completions]
    assert next(iter(firsts[0])) == "BET" and next(iter(firsts[2])) == "GAM"
    logp, _ = trainer._forward(model, ro)
    name_len = len(tok('Beta Mining (BET)", "impact_type": "', add_special_tokens=False)["input_ids"])
    assert torch.allclose(logp[0, :name_len], torch.zeros(name_len), atol=1e-5)
    assert (logp[1, :name_len] < -1e-4).any()  # a free row chose its first name
    stats = trainer.step(prompt[:2], first_entries=[{"Alpha Bank (ALB)"}, {"Alpha Power (ALP)"}]).stats
    assert stats["score"] == 0.0
    with pytest.raises(ValueError, match="needs constrained decoding"):
        PPOTrainer(model, tok, lambda completions, **_: [0.0] * len(completions), cfg,
                   reference_model=copy.deepcopy(model), answer_prefix=ANSWER_PREFIX).rollout(prompt, [None] * 4)


def _four_rows():
    """The tiny model at a seed whose greedy answers differ in length and entries, four left-padded prompts of
    different lengths, each row's answer opening with a different company."""
    from kgfin.llm.models import TINY_MODEL, load_causal_lm

    model, tok = load_causal_lm(TINY_MODEL, seed=2)
    tok.padding_side = "left"
    labels = ["Alpha Power (ALP)", "Alpha Bank (ALB)", "Beta Mining (BET)", "Gamma & Sons (GAM)"]
    grammar = _grammar(tok, max_companies=4, max_new_tokens=120, type_bias={"positive": 0.0, "negative": 0.5}
                       ).with_first_entries([{label} for label in labels])
    enc = tok([f"News {k}: " + "y" * (3 * k) + ANSWER_PREFIX for k in range(4)], return_tensors="pt", padding=True,
              add_special_tokens=False)
    return model, tok, grammar, enc


@pytest.mark.parametrize("stop_at_answer_end", [True, False])
def test_jump_forward_decoding_equals_generate_with_the_logits_processor(stop_at_answer_end: bool) -> None:
    from transformers import DynamicCache, LogitsProcessorList, StoppingCriteriaList

    from kgfin.llm.generate import StopAtJsonEnd, grammar_generate

    model, tok, grammar, enc = _four_rows()
    p = enc["input_ids"].shape[1]
    stop = StopAtJsonEnd(tok, p, 4, ANSWER_PREFIX)
    ref = model.generate(**enc, max_new_tokens=120, do_sample=False, temperature=None, top_p=None, top_k=None,
                         pad_token_id=tok.pad_token_id, logits_processor=LogitsProcessorList([grammar.logits_processor(p)]),
                         stopping_criteria=StoppingCriteriaList([stop]) if stop_at_answer_end else None)[:, p:]
    got = grammar_generate(model, enc["input_ids"], enc["attention_mask"], grammar, max_new_tokens=120,
                           pad_token_id=tok.pad_token_id, stop_at_answer_end=stop_at_answer_end)
    lengths = set()
    for r in range(4):
        expected = ref[r].tolist()
        end = stop.stopped_at[r] if stop_at_answer_end else expected.index(tok.eos_token_id) + 1
        assert got.tokens[r, :got.lengths[r]].tolist() == expected[:end]
        assert (got.tokens[r, got.lengths[r]:] == tok.pad_token_id).all()
        lengths.add(got.lengths[r])
    assert len(lengths) >= 3 and got.closed == [True] * 4  # rows of different lengths: padding was exercised
    assert got.forward_passes * 4 < max(lengths)  # one pass per choice, not per token
    # the prompt's cache but its last token given: the same replies
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        model(input_ids=enc["input_ids"][:, :-1], attention_mask=enc["attention_mask"][:, :-1], cache=cache,
              position_ids=(enc["attention_mask"][:, :-1].cumsum(1) - 1).clamp(min=0), use_cache=True)
    cached = grammar_generate(model, enc["input_ids"], enc["attention_mask"], grammar, max_new_tokens=120,
                              pad_token_id=tok.pad_token_id, stop_at_answer_end=stop_at_answer_end, cache=cache)
    assert torch.equal(cached.tokens, got.tokens)
    narrow = grammar_generate(model, enc["input_ids"], enc["attention_mask"], grammar, max_new_tokens=120,
                              pad_token_id=tok.pad_token_id, stop_at_answer_end=stop_at_answer_end, max_width=2)
    assert torch.equal(narrow.tokens, got.tokens) and narrow.forward_passes > got.forward_passes


def test_jump_forward_sampling_is_seeded_and_stays_in_the_grammar(tiny) -> None:
    from kgfin.llm.generate import grammar_generate

    model, tok = tiny
    grammar = _grammar(tok, max_companies=3, max_new_tokens=40)
    tok.padding_side = "left"
    enc = tok(["Which companies move?" + ANSWER_PREFIX] * 8, return_tensors="pt", add_special_tokens=False)
    runs = [grammar_generate(model, enc["input_ids"], enc["attention_mask"], grammar, max_new_tokens=40,
                             pad_token_id=tok.pad_token_id, temperature=1.5, top_p=0.95,
                             generator=torch.Generator().manual_seed(seed)) for seed in (0, 0, 1)]
    assert torch.equal(runs[0].tokens, runs[1].tokens) and not torch.equal(runs[0].tokens, runs[2].tokens)
    for row, n in zip(runs[2].tokens, runs[2].lengths, strict=True):
        assert n <= 40
        text = ANSWER_PREFIX + tok.decode(row[:n])
        assert not parse_impacts(text, UNIVERSE).refused and json.loads(text)


def test_jump_forward_log_probs_equal_a_full_forward_pass() -> None:
    """Each reply token's recorded log-probability equals the constrained distribution computed from one pass over
    prompt + reply (as PPO takes it): the padded multi-token steps see exactly each row's own tokens."""
    from kgfin.llm.generate import grammar_generate

    model, tok, grammar, enc = _four_rows()
    got = grammar_generate(model, enc["input_ids"], enc["attention_mask"], grammar, max_new_tokens=120,
                           pad_token_id=tok.pad_token_id, temperature=2.0, generator=torch.Generator().manual_seed(3))
    assert len(set(got.lengths)) >= 2
    valid = (torch.arange(got.tokens.shape[1])[None, :] < torch.tensor(got.lengths)[:, None]).long()
    ids = torch.cat([enc["input_ids"], got.tokens], 1)
    att = torch.cat([enc["attention_mask"], valid], 1)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=att, position_ids=(att.cumsum(1) - 1).clamp(min=0)).logits
    p = enc["input_ids"].shape[1]
    allowed, bias = grammar.sampler_choices(got.tokens, valid).dense(got.tokens, valid, logits.shape[-1])
    scores = ((logits[:, p - 1:-1] + bias) / 2.0).masked_fill(~allowed, -torch.inf)
    logp = torch.log_softmax(scores, -1).gather(-1, got.tokens[..., None]).squeeze(-1)
    for r in range(4):
        n = got.lengths[r]
        assert logp[r, :n].tolist() == pytest.approx(got.logprobs[r], abs=1e-4)
        assert sum(lp != 0.0 for lp in got.logprobs[r]) < n / 2  # most tokens were forced
