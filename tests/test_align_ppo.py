"""PPO: its pieces against hand computations, and toy problems whose optimal policy is known."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from toy_lm import toy_lm

from kgfin.align.config import ExperimentalConfig
from kgfin.align.ppo import PPOConfig, PPOTrainer, gae, masked_whiten, policy_loss, value_loss
from kgfin.llm.generate import json_end


def test_gae_matches_hand_computation() -> None:
    r = torch.tensor([[0.0, 0.0, 1.0, 9.0]])
    v = torch.tensor([[0.2, 0.4, 0.6, 9.0]])
    m = torch.tensor([[1, 1, 1, 0]])  # the fourth token is padding: its reward and value are ignored
    adv, ret = gae(r, v, m, gamma=0.9, lam=0.5)
    d2 = 1.0 - 0.6
    d1 = 0.0 + 0.9 * 0.6 - 0.4
    d0 = 0.0 + 0.9 * 0.4 - 0.2
    a2, a1 = d2, d1 + 0.45 * d2
    a0 = d0 + 0.45 * a1
    assert adv.tolist()[0] == pytest.approx([a0, a1, a2, 0.0])
    assert ret.tolist()[0] == pytest.approx([a0 + 0.2, a1 + 0.4, a2 + 0.6, 0.0])


def test_clipped_losses() -> None:
    old = torch.zeros(1, 2)
    new = torch.log(torch.tensor([[1.5, 0.5]])).requires_grad_()  # ratios 1.5 and 0.5
    adv = torch.tensor([[1.0, -1.0]])
    loss, clipfrac, _ = policy_loss(new, old, adv, torch.ones(1, 2), clip=0.2)
    # token 1: max(-1.5, -1.2) = -1.2; token 2: max(0.5, 0.8) = 0.8: both take the clipped term
    assert float(loss.detach()) == pytest.approx((-1.2 + 0.8) / 2)
    assert float(clipfrac) == 1.0
    loss.backward()
    assert torch.allclose(new.grad, torch.zeros(1, 2))  # no gradient beyond the clip
    vl = value_loss(torch.tensor([[2.0]]), torch.tensor([[0.0]]), torch.tensor([[1.0]]), torch.ones(1, 1), clip=0.2)
    assert float(vl) == pytest.approx(0.5 * max((2 - 1) ** 2, (0.2 - 1) ** 2))
    w = masked_whiten(torch.tensor([[1.0, 2.0, 3.0, 100.0]]), torch.tensor([[1, 1, 1, 0]]))
    assert float(w[0, :3].mean()) == pytest.approx(0.0, abs=1e-6) and float(w[0, 3]) == 0.0


def _trainer(kl: float, max_new_tokens: int = 1, seed: int = 0) -> tuple[PPOTrainer, int, torch.nn.Module]:
    model, tok = toy_lm(seed)
    ref = copy.deepcopy(model)
    for p in ref.parameters():
        p.requires_grad_(False)
    target = tok.convert_tokens_to_ids("b")

    def reward(prompts: list[str], completions: list[str], completion_ids: list[list[int]], **_: object) -> list[float]:
        return [sum(i == target for i in ids) / max(len(ids), 1) for ids in completion_ids]

    cfg = PPOConfig(temperature=1.0, batch_size=16, mini_batch_size=8, ppo_epochs=2, learning_rate=1e-2,
                    max_new_tokens=max_new_tokens, kl_coef=kl, seed=seed)
    return PPOTrainer(model, tok, reward, cfg, reference_model=ref), target, ref


def test_bandit_reaches_the_optimal_policy() -> None:
    trainer, _, ref = _trainer(kl=0.0)
    scores = [trainer.step(["pick one"] * 16).stats["score"] for _ in range(25)]
    assert scores[0] < 0.5 and min(scores[-5:]) == 1.0
    # the deterministic optimum's KL to the reference is -log p_ref(b)
    kl = trainer.step(["pick one"] * 16).stats["kl"]
    enc = trainer.tok(["pick one"], return_tensors="pt")
    with torch.no_grad():
        p_ref = torch.softmax(ref(**enc).logits[0, -1], -1)[trainer.tok.convert_tokens_to_ids("b")]
    assert kl == pytest.approx(-math.log(float(p_ref)), rel=0.05)


def test_kl_penalty_gives_the_regularised_optimum() -> None:
    """With beta = 1 the optimum is pi*(b) = p e / (p e + 1 - p), p = p_ref(b) (Ziegler et al. 2019)."""
    trainer, target, ref = _trainer(kl=1.0)
    enc = trainer.tok(["pick one"], return_tensors="pt")
    with torch.no_grad():
        p = float(torch.softmax(ref(**enc).logits[0, -1], -1)[target])
    optimum = p * math.e / (p * math.e + 1 - p)
    scores = [trainer.step(["pick one"] * 16).stats["score"] for _ in range(40)]
    assert sum(scores[-20:]) / 20 == pytest.approx(optimum, abs=0.1)
    assert optimum < 0.5  # far from the unregularised optimum of 1


def test_multi_token_credit_assignment() -> None:
    trainer, _, _ = _trainer(kl=0.0, max_new_tokens=4)
    scores = [trainer.step(["pick one"] * 16).stats["score"] for _ in range(25)]
    assert scores[0] < 0.3 and sum(scores[-3:]) / 3 > 0.95


def test_deterministic_and_checkpointable() -> None:
    a, _, _ = _trainer(kl=0.1)
    b, _, _ = _trainer(kl=0.1)
    assert [a.step(["pick one"] * 16) for _ in range(3)] == [b.step(["pick one"] * 16) for _ in range(3)]
    state = copy.deepcopy(a.state_dict())
    weights = copy.deepcopy(a.policy.state_dict())
    next_a = a.step(["pick one"] * 16)
    c, _, _ = _trainer(kl=0.1)
    c.policy.load_state_dict(weights)
    c.load_state_dict(state)
    assert c.step(["pick one"] * 16) == next_a


def test_bad_reward_and_setup_are_errors() -> None:
    model, tok = toy_lm(0)
    with pytest.raises(ValueError, match="exactly one"):
        PPOTrainer(model, tok, lambda **_: [], PPOConfig())
    trainer = PPOTrainer(model, tok, lambda completions, **_: [float("nan")] * len(completions),
                         PPOConfig(temperature=1.0, batch_size=2, max_new_tokens=1), reference_model=copy.deepcopy(model))
    with pytest.raises(ValueError, match="one finite float"):
        trainer.step(["pick one"] * 2)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        PPOTrainer(model, tok, lambda **_: [], PPOConfig(), reference_model=model)


def test_json_end_counts_braces_outside_strings() -> None:
    assert json_end('{"a": {"b": "}"}} and more') == len('{"a": {"b": "}"}}')
    assert json_end('{"a": "\\"}"} x') == len('{"a": "\\"}"}')  # an escaped quote does not end the string
    assert json_end('} {"a": 1') is None  # a stray closing brace before any opening is ignored
    assert json_end("no json here") is None


def test_rollouts_stop_where_the_json_closes() -> None:
    from toy_lm import WORDS

    model, tok = toy_lm(3, words=[*WORDS, "{", "}"])

    def reward(completions: list[str], **_: object) -> list[float]:
        return [float(c.endswith("}")) for c in completions]

    cfg = PPOConfig(temperature=1.0, batch_size=16, mini_batch_size=8, max_new_tokens=12, seed=0)
    trainer = PPOTrainer(model, tok, reward, cfg, reference_model=copy.deepcopy(model), answer_prefix="{",
                         stop_at_json_end=True)
    ro = trainer.rollout(["pick one"] * 16)
    response = ro.input_ids[:, ro.prompt_length:]
    closed = 0
    for row, mask, text, cut in zip(response, ro.response_mask, ro.completions, ro.truncated, strict=True):
        n = int(mask.sum())
        assert mask[:n].all() and not mask[n:].any()  # the valid tokens are a prefix
        assert (row[n:] == tok.pad_token_id).all()
        # the first k at which "{" + the first k tokens close the object (None: never, within the row)
        ends = [k for k in range(1, n + 1) if json_end("{" + tok.decode(row[:k], skip_special_tokens=True))]
        if ends and tok.eos_token_id not in row[:n - 1].tolist():
            closed += 1
            assert n == ends[0] and text.endswith("}") and not cut  # ends on the closing brace
        else:
            assert not ends
    assert closed >= 2  # the toy model closes the object in some rows within 12 tokens
    stats = trainer.step(["pick one"] * 16).stats
    assert stats["truncated"] < 1.0
    # without the stop a response runs on past the brace
    plain = PPOTrainer(model, tok, reward, cfg, reference_model=copy.deepcopy(model))
    assert max(len(t.split()) for t in plain.rollout(["pick one"] * 16).completions) > 1


def test_leave_one_out_baseline_cancels_what_the_prompt_is_worth() -> None:
    """A bandit whose reward carries a large offset per prompt (a news day's market noise) shared by all its answers:
    with several answers per prompt and the leave-one-out baseline the offset cancels exactly and the policy learns
    the small difference between answers; one answer per prompt under the same noise learns far less."""
    from kgfin.align.ppo import leave_one_out

    shifted = leave_one_out(torch.tensor([1.0, 0.0, 0.0, 0.0]) + 7.0, 4)
    assert shifted.tolist() == pytest.approx([1.0, -1 / 3, -1 / 3, -1 / 3])

    def run(samples: int) -> list[float]:
        model, tok = toy_lm(0)
        target = tok.convert_tokens_to_ids("b")
        seen: list[float] = []

        def reward(completion_ids: list[list[int]], offset: list[float], **_: object) -> list[float]:
            hits = [float(ids[0] == target) for ids in completion_ids]
            seen.append(sum(hits) / len(hits))
            return [h + o for h, o in zip(hits, offset, strict=True)]

        cfg = PPOConfig(temperature=1.0, batch_size=16, mini_batch_size=8, ppo_epochs=2, learning_rate=1e-2, max_new_tokens=1,
                        kl_coef=0.0, seed=0)
        trainer = PPOTrainer(model, tok, reward, cfg, reference_model=copy.deepcopy(model),
                             experimental=ExperimentalConfig(samples_per_prompt=samples))
        noise = torch.Generator().manual_seed(1)
        for _ in range(25):
            n = 16 // samples
            trainer.step(["pick one"] * n, offset=(20 * torch.randn(n, generator=noise)).tolist())
        return seen

    grouped, single = run(4), run(1)
    assert grouped[0] < 0.5 and sum(grouped[-3:]) / 3 > 0.9
    assert sum(single[-3:]) / 3 < sum(grouped[-3:]) / 3 - 0.3
    model, tok = toy_lm(0)
    with pytest.raises(ValueError, match="multiple of samples_per_prompt"):
        PPOTrainer(model, tok, lambda **_: [], PPOConfig(batch_size=6), reference_model=copy.deepcopy(model),
                   experimental=ExperimentalConfig(samples_per_prompt=4))


def test_normalized_scores_keep_a_small_reward_from_drowning_in_the_kl_penalty() -> None:
    """A bandit paying 0.01 for the right token under kl_coef 0.5: the KL-regularised optimum barely moves from the
    reference (pi*(b) = p e^0.02 / (p e^0.02 + 1 - p)), while normalised scores make the same preference O(1)."""

    def run(normalize: bool) -> float:
        model, tok = toy_lm(0)
        target = tok.convert_tokens_to_ids("b")
        seen: list[float] = []

        def reward(completion_ids: list[list[int]], **_: object) -> list[float]:
            hits = [float(ids[0] == target) for ids in completion_ids]
            seen.append(sum(hits) / len(hits))
            return [0.01 * h for h in hits]

        cfg = PPOConfig(temperature=1.0, batch_size=16, mini_batch_size=8, ppo_epochs=2, learning_rate=1e-2, max_new_tokens=1,
                        kl_coef=0.5, seed=0)
        trainer = PPOTrainer(model, tok, reward, cfg, reference_model=copy.deepcopy(model),
                             experimental=ExperimentalConfig(samples_per_prompt=4, normalize_scores=normalize))
        for _ in range(30):
            trainer.step(["pick one"] * 4)
        return sum(seen[-5:]) / 5

    normalized, raw = run(True), run(False)
    assert normalized > 0.6 and raw < 0.3


def test_one_update_per_rollout_skips_the_old_pass_and_changes_nothing() -> None:
    """ppo_epochs 1 with one minibatch: old log-probs and values come from the update's own forward pass."""
    results, weights, calls = [], [], []
    for fuse in (True, False):
        trainer, _, _ = _trainer(kl=0.1, max_new_tokens=3)
        trainer.cfg = trainer.cfg.model_copy(update={"ppo_epochs": 1, "mini_batch_size": 16})
        trainer.fuse_single_update = fuse
        forward = trainer._forward
        n = [0]

        def counted(*a, _f=forward, _n=n, **k):  # type: ignore[no-untyped-def]
            _n[0] += 1
            return _f(*a, **k)

        trainer._forward = counted  # type: ignore[method-assign]
        results.append([trainer.step(["pick one"] * 16).stats for _ in range(2)])
        weights.append({k: v.clone() for k, v in trainer.policy.state_dict().items()})
        calls.append(n[0])
    assert calls == [4, 6]  # per step: reference + update, against reference + old pass + update
    for a, b in zip(results[0], results[1], strict=True):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
    for k in weights[0]:
        assert torch.allclose(weights[0][k], weights[1][k], atol=1e-6)


def test_shared_prompt_cache_gives_the_same_rollout() -> None:
    """k answers per prompt: the prompt is prefilled once and its cache repeated; answers and masks are those of
    the plain rollout (left-padded prompts of different lengths, a real Llama)."""
    from kgfin.llm import TINY_MODEL, load_causal_lm

    model, tok = load_causal_lm(TINY_MODEL)
    for p in model.parameters():
        p.requires_grad_(True)
    prompts = [q for q in ("a short prompt", "a much longer prompt with several more words in it") for _ in range(4)]
    outs = []
    for share in (True, False):
        trainer = PPOTrainer(model, tok, lambda completions, **_: [0.0] * len(completions),
                             PPOConfig(temperature=1.0, batch_size=8, max_new_tokens=6, seed=3),
                             reference_model=copy.deepcopy(model), experimental=ExperimentalConfig(samples_per_prompt=4))
        if not share:
            trainer._shared_prompt_cache = lambda enc: None  # type: ignore[method-assign]
        outs.append(trainer.rollout(prompts))
    assert torch.equal(outs[0].input_ids, outs[1].input_ids)
    assert torch.equal(outs[0].response_mask, outs[1].response_mask)
    with pytest.raises(ValueError, match="runs of samples_per_prompt"):
        PPOTrainer._shared_prompt_cache(trainer, tok(["one prompt", "another prompt", "one prompt", "one prompt"],
                                         return_tensors="pt", padding=True))


def test_shared_prompt_cache_in_the_forward_passes_gives_the_same_log_probs_and_gradients() -> None:
    """The reference and update passes run each distinct prompt once and repeat its cache for the k answers; the
    log-probs, hidden states and the gradient of a loss on them equal those of k separate passes."""
    from kgfin.llm import TINY_MODEL, load_causal_lm

    model, tok = load_causal_lm(TINY_MODEL)
    for p in model.parameters():
        p.requires_grad_(True)
    prompts = [q for q in ("a short prompt", "a much longer prompt with several more words in it") for _ in range(4)]
    trainer = PPOTrainer(model, tok, lambda completions, **_: [0.0] * len(completions),
                         PPOConfig(temperature=0.9, batch_size=8, max_new_tokens=5, seed=1),
                         reference_model=copy.deepcopy(model), experimental=ExperimentalConfig(samples_per_prompt=4))
    ro = trainer.rollout(prompts)
    results = []
    for share in (True, False):
        if not share:
            trainer._prompt_cache = lambda *a, **k: None  # type: ignore[method-assign]
        model.zero_grad()
        logp, hidden = trainer._forward(model, ro, hidden=True)
        assert hidden is not None
        (logp * ro.response_mask).sum().backward()
        results.append((logp.detach(), hidden.detach(), [q.grad.clone() for q in model.parameters()]))
    (lp1, h1, g1), (lp2, h2, g2) = results
    assert torch.allclose(lp1, lp2, atol=1e-5) and torch.allclose(h1, h2, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(g1, g2, strict=True))
    assert any(float(g.abs().sum()) > 0 for g in g1)
