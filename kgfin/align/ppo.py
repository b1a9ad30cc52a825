"""PPO for a language-model policy with a reward *function* (TRL's current release has no PPO).

One :meth:`PPOTrainer.step`, after Schulman et al. (2017) and the RLHF recipe of Ziegler et
al. (2019) as TRL's PPOv2 implements it:

1. **roll out**: sample a response to each prompt from the policy (temperature ``T``);
2. **score**: ``reward_fn(prompts=..., completions=..., completion_ids=..., **columns)`` gives
   one float per response (the calling convention of TRL's GRPO/RLOO reward functions), or one
   object with a ``reward`` attribute (e.g. a :class:`~kgfin.align.impact_reward.ScoredAnswer`),
   which :meth:`PPOTrainer.step` hands back with its statistics.
   With ``samples_per_prompt = k > 1`` (:class:`~kgfin.align.config.ExperimentalConfig`) every prompt is answered k times and each score is
   replaced by ``score - mean(scores of the prompt's other k - 1 answers)`` (the leave-one-out
   baseline of RLOO, Ahmadian et al. 2024): a prompt whose reward is high or low for every
   answer (a noisy news day) then moves nothing, which a value head cannot learn from few
   samples; with ``group_normalize`` it is ``(score - group mean) / group std`` instead (GRPO's
   group-normalised advantage, Shao et al. 2024). ``normalize_scores`` then divides the scores by their standard deviation over
   the rollout, so that the KL penalty below weighs the same against any reward's units;
3. **per-token rewards**: ``r_t = -beta * (log pi(a_t) - log pi_ref(a_t))``, plus the score
   on the response's last token (the KL penalty keeps the policy near the reference);
4. **advantages** by GAE(gamma, lambda) from a value head on the policy's (detached) final
   hidden states; ``returns = advantages + values``; advantages whitened;
5. ``ppo_epochs`` passes over minibatches of the rollout: clipped ratio loss
   ``-min(rho A, clip(rho, 1-eps, 1+eps) A)`` plus ``vf_coef`` x the clipped value loss.

Shapes: B prompts, P prompt tokens (left-padded), T response tokens (right-padded),
H hidden size. Log-probabilities are taken from ``logits / T`` so that they are those of
the sampling distribution; with a ``grammar`` (constrained decoding, :mod:`kgfin.llm.grammar`)
the tokens it did not allow are masked out of the logits first, so ratios and the KL are those
of the constrained sampler and a forced token (the only one allowed) weighs nothing. The output layer then
runs only where the grammar left a choice and only on the tokens it allowed there
(:class:`~kgfin.llm.grammar.SamplerChoices`), not on every answer position and the whole vocabulary.
Position ids come from the attention mask, as in generation.
Everything runs on the policy's device (CPU or GPU); the sampling and minibatch generators
are CPU generators, so a checkpoint resumes anywhere.

The trainer optimises whatever parameters of ``policy`` require gradients (an alignment
LoRA, or the backbone) plus the value head. The reference is either a separate frozen
model or a context manager that makes the policy act as the reference (e.g. with the
alignment adapter switched off).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import StoppingCriteriaList

from kgfin.align.config import ExperimentalConfig, PPOConfig
from kgfin.llm.generate import StopAtJsonEnd, grammar_generate
from kgfin.llm.grammar import AnswerGrammar, SamplerChoices

__all__ = ["PPOConfig", "PPOStepResult", "PPOTrainer", "Rollout", "ValueHead", "gae", "group_normalized",
           "leave_one_out", "masked_mean", "masked_whiten", "policy_loss", "value_loss"]

RewardFn = Callable[..., Sequence[Any]]  # floats, or objects with a float ``reward``


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` over entries where ``mask`` is 1."""
    mask = mask.to(x.dtype)
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` standardised over masked entries (zero outside the mask)."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    return (x - mean) * torch.rsqrt(var + 1e-8) * mask


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over (B, T) per-token rewards and values.

    ``mask`` marks each row's valid response tokens (a prefix of the row); the value after
    the last valid token is 0. Returns (advantages, returns), zero outside the mask.

    >>> r = torch.tensor([[0.0, 0.0, 1.0]]); v = torch.tensor([[0.5, 0.5, 0.5]]); m = torch.ones(1, 3)
    >>> a, ret = gae(r, v, m, gamma=1.0, lam=1.0)
    >>> a.tolist(), ret.tolist()
    ([[0.5, 0.5, 0.5]], [[1.0, 1.0, 1.0]])
    """
    mask = mask.to(rewards.dtype)
    b, t = rewards.shape
    adv = torch.zeros_like(rewards)
    zero = torch.zeros(b, dtype=rewards.dtype, device=rewards.device)
    last = zero
    for i in reversed(range(t)):
        next_value = values[:, i + 1] * mask[:, i + 1] if i + 1 < t else zero
        next_mask = mask[:, i + 1] if i + 1 < t else zero
        delta = rewards[:, i] + gamma * next_value - values[:, i]
        last = delta + gamma * lam * last * next_mask
        adv[:, i] = last * mask[:, i]
    return adv, (adv + values) * mask


def group_normalized(scores: torch.Tensor, k: int, eps: float = 1e-6) -> torch.Tensor:
    """Each score minus its group's mean, divided by the group's standard deviation (groups: consecutive runs of
    ``k``; GRPO's advantage, Shao et al. 2024). A group whose scores are all equal gives zeros.

    >>> [round(v, 4) for v in group_normalized(torch.tensor([1.0, 2.0, 3.0, 5.0, 5.0, 5.0]), 3).tolist()]
    [-1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    """
    if k == 1:
        return scores
    groups = scores.view(-1, k)
    centred = groups - groups.mean(1, keepdim=True)
    return (centred / (groups.std(1, keepdim=True) + eps)).view(-1)


def leave_one_out(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Each score minus the mean of the other ``k - 1`` scores of its group (groups: consecutive runs of ``k``).

    >>> leave_one_out(torch.tensor([1.0, 2.0, 3.0, 10.0, 10.0, 13.0]), 3).tolist()
    [-1.5, 0.0, 1.5, -1.5, -1.5, 3.0]
    """
    if k == 1:
        return scores
    groups = scores.view(-1, k)
    others = (groups.sum(1, keepdim=True) - groups) / (k - 1)
    return (groups - others).view(-1)


def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, clip: float
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clipped surrogate loss, the share of clipped tokens, and the approximate KL(old || new)."""
    ratio = torch.exp(logp - old_logp)
    loss = torch.max(-adv * ratio, -adv * torch.clamp(ratio, 1 - clip, 1 + clip))
    clipped = ((ratio - 1).abs() > clip).to(logp.dtype)
    approx_kl = 0.5 * (logp - old_logp) ** 2
    return masked_mean(loss, mask), masked_mean(clipped, mask), masked_mean(approx_kl, mask)


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip: float) -> torch.Tensor:
    """Clipped value loss: 0.5 * max((V - R)^2, (V_clipped - R)^2)."""
    clipped = old_values + torch.clamp(values - old_values, -clip, clip)
    return 0.5 * masked_mean(torch.max((values - returns) ** 2, (clipped - returns) ** 2), mask)


class ValueHead(nn.Module):
    """Value of each response state from the policy's final hidden states (detached).

    Shapes: hidden (B, T, H) -> values (B, T).
    """

    def __init__(self, hidden_size: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden_size, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.net(hidden.detach()).squeeze(-1)


@dataclass
class Rollout:
    """One batch of prompts and sampled responses, with what PPO needs about them."""

    input_ids: torch.Tensor  # (B, P + T)
    attention_mask: torch.Tensor  # (B, P + T)
    response_mask: torch.Tensor  # (B, T): valid response tokens (up to and including EOS or the JSON's end)
    prompt_length: int  # P
    completions: list[str]
    truncated: torch.Tensor  # (B,) bool: cut off by max_new_tokens (no EOS, JSON not closed)
    choices: SamplerChoices | None = None  # where a grammar left a choice, among which tokens, with its type bias


@dataclass
class PPOStepResult:
    """What one PPO step did: mean statistics, and the reward function's output per response."""

    stats: dict[str, float]
    scored: list[Any]


class PPOTrainer:
    """Runs PPO steps on ``policy`` with ``reward_fn``; see the module docstring."""

    fuse_single_update = True  # with one update per rollout, take the old log-probs from the update's forward pass

    def __init__(
        self,
        policy: nn.Module,
        tokenizer: Any,
        reward_fn: RewardFn,
        config: PPOConfig | None = None,
        *,
        reference_model: nn.Module | None = None,
        reference_context: Callable[[], AbstractContextManager[Any]] | None = None,
        answer_prefix: str = "",
        grammar: AnswerGrammar | None = None,
        stop_at_json_end: bool = False,
        experimental: ExperimentalConfig | None = None,
    ):
        if (reference_model is None) == (reference_context is None):
            raise ValueError("give exactly one of reference_model or reference_context")
        self.cfg = config or PPOConfig()
        self.experimental = experimental or ExperimentalConfig()
        if self.cfg.batch_size % self.experimental.samples_per_prompt:
            raise ValueError(f"batch_size ({self.cfg.batch_size}) must be a multiple of samples_per_prompt "
                             f"({self.experimental.samples_per_prompt})")
        self.stop_at_json_end = stop_at_json_end  # end a response where its JSON answer closes
        self.policy, self.tok, self.reward_fn = policy, tokenizer, reward_fn
        self.reference_model, self.reference_context = reference_model, reference_context
        self.answer_prefix = answer_prefix  # prefilled text the responses continue (for stop_at_json_end)
        self.grammar = grammar  # constrained decoding: sample and take log-probs inside the answer language
        hidden = policy.config.hidden_size if hasattr(policy, "config") else policy.get_base_model().config.hidden_size
        torch.manual_seed(self.cfg.seed)
        self.device = next(policy.parameters()).device  # rollouts and updates run where the policy lives
        self.value_head = ValueHead(hidden, self.cfg.value_hidden).to(self.device)
        self.trainable = [p for p in policy.parameters() if p.requires_grad]
        if not self.trainable:
            raise ValueError("the policy has no trainable parameters")
        self.optimizer = torch.optim.AdamW([*self.trainable, *self.value_head.parameters()], lr=self.cfg.learning_rate)
        self.generator = torch.Generator().manual_seed(self.cfg.seed)
        self.steps_done = 0

    # --- forward passes -----------------------------------------------------------------------

    def _forward(self, model: nn.Module, ro: Rollout, rows: slice | torch.Tensor = slice(None),
                 hidden: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log-probs of the response tokens (B, T) and, if asked, final hidden states (B, T, H).

        Over the whole rollout with ``samples_per_prompt = k > 1`` the prompt (but its last token) runs once per
        distinct prompt and its key/value cache is repeated for the k answers (:meth:`_prompt_cache`); gradients
        flow through the shared cache, so log-probs and gradients are those of k separate passes.
        """
        ids, att = ro.input_ids[rows], ro.attention_mask[rows]
        pos = (att.cumsum(1) - 1).clamp(min=0)
        p = ro.prompt_length
        t = ids.shape[1] - p
        whole = isinstance(rows, slice) and rows == slice(None)
        cache = self._prompt_cache(model, ids[:, :p], att[:, :p]) if whole else None
        # under a grammar only its choices need logits (keep one position's); else the T + 1 last positions'
        # (position i predicts token i + 1)
        keep = 1 if ro.choices is not None else t + 1
        want_hidden = hidden or ro.choices is not None
        if cache is not None:  # run the last prompt token and the answers on the shared prompt cache
            out = model(input_ids=ids[:, p - 1:], attention_mask=att, position_ids=pos[:, p - 1:], cache=cache,
                        use_cache=True, output_hidden_states=want_hidden, logits_to_keep=keep)
        else:
            out = model(input_ids=ids, attention_mask=att, position_ids=pos, output_hidden_states=want_hidden,
                        use_cache=False, logits_to_keep=keep)
        last = out.hidden_states[-1][:, -t - 1:-1] if want_hidden else None  # (B, T, H): what predicts each token
        if ro.choices is not None:
            choices = ro.choices if whole else ro.choices.select(torch.arange(len(ro.input_ids), device=ids.device)[rows])
            logp = self._choice_logp(model, last, choices)
        else:
            logits = out.logits[:, :-1] / self.cfg.temperature  # (B, T, V)
            logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[:, p:, None]).squeeze(-1)
        return logp, (last if hidden else None)

    def _choice_logp(self, model: nn.Module, last: torch.Tensor, choices: SamplerChoices) -> torch.Tensor:
        """(B, T) log-probs under the constrained sampler's distribution (:meth:`SamplerChoices.log_probs` at each
        choice, at the sampling temperature), 0 where the token was forced."""
        chosen = choices.log_probs(last, model.get_output_embeddings(), self.cfg.temperature)
        logp = torch.zeros(last.shape[:2], dtype=chosen.dtype, device=last.device)
        return logp.index_put((choices.rows, choices.positions), chosen)

    def _reference_logp(self, ro: Rollout) -> torch.Tensor:
        with torch.no_grad():
            if self.reference_model is not None:
                return self._forward(self.reference_model, ro)[0]
            assert self.reference_context is not None
            with self.reference_context():
                return self._forward(self.policy, ro)[0]

    # --- rollout ------------------------------------------------------------------------------

    def rollout(self, prompts: Sequence[str], first_entries: Sequence[Collection[str] | None] | None = None) -> Rollout:
        """Sample one response per (already chat-formatted) prompt (``first_entries``: per prompt, the companies its
        answer must open with, under the grammar)."""
        grammar = self.grammar
        if first_entries is not None:
            if grammar is None:
                raise ValueError("first_entries needs constrained decoding (a grammar)")
            grammar = grammar.with_first_entries(first_entries)
        tok = self.tok
        side = tok.padding_side
        tok.padding_side = "left"
        try:
            enc = tok(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        finally:
            tok.padding_side = side
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))
        p = enc["input_ids"].shape[1]
        dev = enc["input_ids"].device
        if grammar is not None:  # jump-forward decoding inside the grammar (same distribution as generate's)
            replies = grammar_generate(
                self.policy, enc["input_ids"], enc["attention_mask"], grammar, max_new_tokens=self.cfg.max_new_tokens,
                pad_token_id=tok.pad_token_id, temperature=self.cfg.temperature, top_p=self.cfg.top_p,
                stop_at_answer_end=self.stop_at_json_end, cache=self._shared_prompt_cache(enc),
                generator=torch.Generator(device=dev).manual_seed(seed))
            response = replies.tokens
            end = torch.tensor(replies.lengths, device=dev)
            closed = torch.tensor(replies.closed, device=dev)
        else:
            torch.manual_seed(seed)
            stop = StopAtJsonEnd(tok, p, len(prompts), self.answer_prefix)
            with torch.no_grad():
                out = self.policy.generate(
                    **enc, max_new_tokens=self.cfg.max_new_tokens, do_sample=True, temperature=self.cfg.temperature,
                    top_p=self.cfg.top_p, top_k=0, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                    stopping_criteria=StoppingCriteriaList([stop]) if self.stop_at_json_end else None,
                    cache=self._shared_prompt_cache(enc),
                )
            response = out[:, p:]
            t = response.shape[1]
            is_eos = response == tok.eos_token_id
            # a response ends at its first EOS or where its JSON closed, whichever comes first
            end = torch.where(is_eos.any(1), is_eos.float().argmax(1) + 1, torch.full((len(prompts),), t, device=dev))
            closed = torch.tensor([s is not None for s in stop.stopped_at], device=dev)
            end = torch.minimum(end, torch.tensor([s if s is not None else t for s in stop.stopped_at], device=dev))
        t = response.shape[1]
        response_mask = (torch.arange(t, device=dev)[None, :] < end[:, None]).long()
        is_eos = (response == tok.eos_token_id) & response_mask.bool()
        response = torch.where(response_mask.bool(), response, torch.full_like(response, tok.pad_token_id))
        ids = torch.cat([enc["input_ids"], response], dim=1)
        att = torch.cat([enc["attention_mask"], response_mask], dim=1)
        texts = tok.batch_decode(response, skip_special_tokens=True)
        choices = grammar.sampler_choices(response, response_mask) if grammar is not None else None
        return Rollout(ids, att, response_mask, p, [t.strip() for t in texts], ~(is_eos.any(1) | closed), choices)

    def _shared_prompt_cache(self, enc: Any) -> Any:
        """The policy's prompt cache for a rollout (:meth:`_prompt_cache`, without gradients)."""
        with torch.no_grad():
            return self._prompt_cache(self.policy, enc["input_ids"], enc["attention_mask"])

    def _prompt_cache(self, model: nn.Module, ids: torch.Tensor, att: torch.Tensor) -> Any:
        """The key/value cache of the (left-padded) prompts ``ids`` but their last token, computed once per distinct
        prompt and repeated for its ``samples_per_prompt`` answers (rows come in runs of k equal prompts); None when
        k is 1.

        The prompt, the larger part of the compute at short answers, is then paid once per prompt instead of k
        times: in the rollout's prefill, the reference pass and the policy's update (where gradients flow through
        the repeated cache into every answer's loss).
        """
        k = self.experimental.samples_per_prompt
        if k == 1 or ids.shape[1] < 2:
            return None
        if not bool((ids.view(-1, k, ids.shape[1]) == ids[::k, None]).all()):
            raise ValueError("shared prompt cache: rows must come in runs of samples_per_prompt equal prompts")
        from transformers import DynamicCache

        first, first_att = ids[::k, :-1], att[::k, :-1]
        pos = (first_att.cumsum(1) - 1).clamp(min=0)
        config = model.config if hasattr(model, "config") else model.get_base_model().config
        cache = DynamicCache(config=config)
        model(input_ids=first, attention_mask=first_att, position_ids=pos, cache=cache, use_cache=True,
              logits_to_keep=1)
        cache.batch_repeat_interleave(k)
        return cache

    # --- one PPO step -------------------------------------------------------------------------

    def step(self, prompts: Sequence[str], first_entries: Sequence[Collection[str] | None] | None = None,
             **columns: Sequence[Any]) -> PPOStepResult:
        """Roll out on ``prompts``, score the responses, update the policy; return statistics and the scores.

        ``columns`` are per-prompt values passed on to the reward function (e.g. event ids);
        ``first_entries`` per prompt restricts the answer's first company (see :meth:`rollout`).
        With ``samples_per_prompt = k`` each prompt (and its columns) is repeated k times in a row.
        """
        cfg, extra = self.cfg, self.experimental
        k = extra.samples_per_prompt
        prompts = [p for p in prompts for _ in range(k)]
        columns = {name: [v for v in values for _ in range(k)] for name, values in columns.items()}
        if first_entries is not None:
            first_entries = [f for f in first_entries for _ in range(k)]
        self.policy.eval()  # no dropout: old and new log-probs agree exactly before the first update
        ro = self.rollout(prompts, first_entries)
        ids = [row[m.bool()].tolist() for row, m in zip(ro.input_ids[:, ro.prompt_length:], ro.response_mask, strict=True)]
        raw = self.reward_fn(prompts=list(prompts), completions=ro.completions, completion_ids=ids, **columns)
        scored = list(raw)
        scores = torch.tensor([float(getattr(s, "reward", s)) for s in scored], dtype=torch.float32, device=self.device)
        if scores.shape[0] != len(prompts) or not torch.isfinite(scores).all():
            raise ValueError("reward_fn must return one finite float (or scored answer) per completion")
        scores = scores - extra.missing_eos_penalty * ro.truncated.float()
        raw_mean = float(scores.mean())
        scores = group_normalized(scores, k) if extra.group_normalize else leave_one_out(scores, k)
        if extra.normalize_scores and len(scores) > 1:
            scores = scores / (scores.std() + 1e-8)
        mask = ro.response_mask.float()
        # One update per rollout (ppo_epochs 1, one minibatch): the policy's log-probs and values before the update
        # are those of the update's own forward pass, so the separate pass is skipped (same result, one forward less).
        single = self.fuse_single_update and cfg.ppo_epochs == 1 and cfg.mini_batch_size >= len(prompts)
        with torch.no_grad():
            ref_logp = self._reference_logp(ro)
        if single:
            logp_all, hid_all = self._forward(self.policy, ro, hidden=True)
            values_all = self.value_head(hid_all)
            old_logp, old_values = logp_all.detach(), values_all.detach() * mask
        else:
            with torch.no_grad():
                old_logp, hid = self._forward(self.policy, ro, hidden=True)
                old_values = self.value_head(hid) * mask
        kl = (old_logp - ref_logp) * mask
        rewards = -cfg.kl_coef * kl
        last = (mask.sum(1).long() - 1).clamp(min=0)
        rewards[torch.arange(len(prompts), device=self.device), last] += scores
        adv, returns = gae(rewards, old_values, mask, cfg.gamma, cfg.lam)
        if cfg.whiten_advantages:
            adv = masked_whiten(adv, mask)

        stats: dict[str, list[float]] = {"pg_loss": [], "vf_loss": [], "clipfrac": [], "approx_kl": []}
        order_gen = torch.Generator().manual_seed(cfg.seed + self.steps_done)
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(len(prompts), generator=order_gen).to(self.device)
            for lo in range(0, len(prompts), cfg.mini_batch_size):
                rows = order[lo:lo + cfg.mini_batch_size]
                if single:
                    logp, values = logp_all[rows], values_all[rows]
                else:
                    logp, h = self._forward(self.policy, ro, rows, hidden=True)
                    values = self.value_head(h)
                m = mask[rows]
                pg, clipfrac, approx_kl = policy_loss(logp, old_logp[rows], adv[rows], m, cfg.clip_range)
                vf = value_loss(values, old_values[rows], returns[rows], m, cfg.clip_range_value)
                loss = pg + cfg.vf_coef * vf
                self.optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_([*self.trainable, *self.value_head.parameters()], cfg.max_grad_norm)
                self.optimizer.step()
                for k, v in zip(stats, (pg, vf, clipfrac, approx_kl), strict=True):
                    stats[k].append(float(v.detach()))
        self.steps_done += 1
        return PPOStepResult({
            "score": raw_mean, "kl": float(kl.sum(1).mean()),
            "response_length": float(mask.sum(1).mean()), "truncated": float(ro.truncated.float().mean()),
            **{k: float(sum(v) / len(v)) for k, v in stats.items()},
            "advantage_std": float(adv[mask.bool()].std()) if mask.sum() > 1 else math.nan,
        }, scored)

    # --- checkpoints --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Optimizer, value head, step count and sampling RNG (the policy's weights are saved separately)."""
        return {"optimizer": self.optimizer.state_dict(), "value_head": self.value_head.state_dict(),
                "steps_done": self.steps_done, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.value_head.load_state_dict(state["value_head"])
        self.steps_done = int(state["steps_done"])
        self.generator.set_state(state["generator"])
