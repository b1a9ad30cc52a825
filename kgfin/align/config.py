"""Settings of market alignment (``kgfin align``): the ``align`` section of a recipe (``kgfin/recipes/align.yaml``
writes out every default)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kgfin.align.reward import RewardConfig
from kgfin.config import KgfinConfig
from kgfin.inject.config import LoraSettings
from kgfin.llm.models import DEFAULT_MODEL
from kgfin.market.residuals import ResidualConfig

__all__ = ["AlignConfig", "DecodingConfig", "EventConfig", "ExperimentalConfig", "ImpactRewardConfig", "PPOConfig",
           "WarmStartConfig"]


class PPOConfig(KgfinConfig):
    """PPO hyper-parameters (defaults follow TRL's PPOv2 where it has them; learning rate, temperature and length are
    alignment's)."""

    batch_size: int = Field(
        8, ge=1, description="responses per PPO step (one rollout): batch_size / samples_per_prompt prompts, "
                             "samples_per_prompt answers each (experimental.samples_per_prompt, default 1)")
    mini_batch_size: int = Field(4, ge=1, description="rollout rows per gradient step")
    ppo_epochs: int = Field(2, ge=1, description="passes over each rollout")
    learning_rate: float = Field(5e-5, gt=0, description="AdamW learning rate (policy parameters and value head)")
    clip_range: float = Field(0.2, gt=0, description="policy ratio clip epsilon")
    clip_range_value: float = Field(0.2, gt=0, description="value clip range")
    vf_coef: float = Field(0.5, ge=0, description="weight of the value loss")
    kl_coef: float = Field(0.05, ge=0, description="beta: per-token KL penalty to the reference")
    gamma: float = Field(1.0, ge=0, le=1, description="discount")
    lam: float = Field(0.95, ge=0, le=1, description="GAE lambda")
    max_new_tokens: int = Field(128, ge=1, description="response length limit")
    temperature: float = Field(
        0.7, gt=0, description="sampling temperature of rollouts (at 1.0 SmolLM2-135M's sampled answers are ~90 % "
                               "unparsable: no learning signal)")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling of rollouts")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient clipping")
    whiten_advantages: bool = Field(True, description="normalise advantages within each rollout")
    value_hidden: int = Field(64, ge=1, description="hidden units of the value head")
    seed: int = Field(0, description="sampling and minibatch seed")


class EventConfig(KgfinConfig):
    """Which news events a month contributes, and what the model may know when it reads them."""

    graph_lag_months: int = Field(
        1, ge=0,
        description="news of month m is read with the graph and knowledge adapter of month m - lag; 1 is point in "
                    "time (a month's graph is complete only at its end); 0 is the paper's same-month setting")
    max_events_per_month: int | None = Field(
        32, ge=1, description="cap per month, sampled deterministically (None: every event)")
    min_tickers: int = Field(1, ge=1, description="skip news that names fewer companies than this")
    seed: int = Field(0, description="event sampling and order")


class ImpactRewardConfig(KgfinConfig):
    """How a parsed answer becomes the reward R(Z, eps)."""

    score_unit: float = Field(
        0.01, gt=0, description="return per impact-score point: a score of 10 is a 10 x score_unit move")
    focal_score_unit: float | None = Field(
        None, gt=0, description="return per score point of the news' own company (its first named company; None: "
                                "score_unit): its move is several times a ripple firm's, so a scale fine enough for "
                                "the ripple leaves it at +-10")
    refusal_reward: float = Field(
        -0.05, description="reward of an answer that cannot be parsed, names no known company or copies the prompt's "
                           "example; slightly below 0 (a prediction orthogonal to the market) so that refusing is "
                           "never the safe choice: with 0, PPO drifted towards refusing everything")
    reward: RewardConfig = Field(default_factory=RewardConfig)
    residuals: ResidualConfig = Field(default_factory=ResidualConfig)
    horizon: int = Field(
        1, ge=0, description="candidate rewards: outcome window, trading days 0..horizon after the event day (as the "
                             "ripple evaluation v2's ripple_eval.v2.horizon)")
    random_candidates: int = Field(
        20, ge=0, description="candidate rewards: random non-neighbours in each event's candidate set (as "
                              "ripple_eval.v2.random_candidates)")
    candidate_seed: int = Field(0, description="candidate rewards: seed of the candidate draws (as ripple_eval.v2.seed)")

    def unit_of(self, focal: bool) -> float:
        """Return per score point of the news' own company (``focal``) or of any other company."""
        return (self.focal_score_unit or self.score_unit) if focal else self.score_unit


class DecodingConfig(KgfinConfig):
    """How every language-model answer is decoded: alignment rollouts, ``kgfin predict`` and the ripple evaluation.

    Built once into a :class:`kgfin.align.decoding.Decoder`.
    """

    prefill_json: bool = Field(
        True, description="start every answer with the JSON opening (kgfin.llm.prompts.ANSWER_PREFIX): small models "
                          "otherwise answer in prose and every answer is a refusal")
    stop_at_json_end: bool = Field(
        True, description="end an answer where its JSON object closes (counting the prefix), as if it had emitted "
                          "EOS: answers stay parseable and rollouts short (small models ramble on after it)")
    constrained: bool = Field(
        True, description="decode every answer inside the analyst JSON's grammar (kgfin.llm.grammar): names only from "
                           "the universe, integer scores in [-10, 10], the JSON always closes; no answer is a refusal, "
                           "and what the model chooses (companies, signs, sizes) is what the reward judges")
    max_companies: int = Field(
        5, ge=1, description="constrained: most companies one answer may name (fewer when the token limit leaves no "
                             "room)")
    first_entry: Literal["any", "news"] = Field(
        "any", description="constrained: any = the answer may open with any company; news = its first entry must be a "
                           "company the news item names (the model still chooses which, its direction and size, and "
                           "any further firms)")
    calibrate_impact_type: bool = Field(
        False, description="constrained: cancel the model's prior for 'positive' over 'negative' by batch "
                           "calibration on the previous month's news (kgfin.align.calibration)")
    calibration_events: int = Field(
        32, ge=1, description="calibrate_impact_type: news items of the previous month the prior is averaged over")
    candidates_in_prompt: bool = Field(
        False, description="list the focal firm's relations in the month graph in the prompt (type, direction, "
                           "strength; strongest first, candidate_facts of them) and, constrained, let the answer "
                           "name only the focal firm and the firms listed (retrieval of the candidates, beside the "
                           "knowledge adapter)")
    candidate_facts: int = Field(30, ge=1, description="candidates_in_prompt: relations listed (about 15 tokens each)")
    score_listed: bool = Field(
        False, description="candidates_in_prompt, constrained: after its first entry the answer scores the listed "
                           "companies in the order the prompt lists them (the grammar writes their names: the model "
                           "chooses each one's direction and size, and may close early); max_companies and "
                           "max_new_tokens must leave room for them (about 28 tokens an entry)")
    format_in_prompt: bool = Field(
        True, description="show the answer's JSON format in the prompt; constrained decoding does not need it (the "
                          "grammar writes it) and every pass over the prompt is then ~90 tokens (about a third) "
                          "shorter")

    @model_validator(mode="after")
    def _check(self) -> DecodingConfig:
        if self.constrained and not self.prefill_json:
            raise ValueError("decoding.constrained needs prefill_json=true: the grammar continues the prefilled JSON "
                             "opening")
        if self.first_entry != "any" and not self.constrained:
            raise ValueError(f"first_entry={self.first_entry} needs decoding.constrained=true: the grammar restricts "
                             "the first entry")
        if not self.format_in_prompt and not self.constrained:
            raise ValueError("format_in_prompt=false needs decoding.constrained=true: without the grammar the model "
                             "must be told the JSON format")
        if self.calibrate_impact_type and not self.constrained:
            raise ValueError("calibrate_impact_type needs decoding.constrained=true: the bias is added where the "
                             "grammar decides the impact type")
        if self.score_listed and not (self.constrained and self.candidates_in_prompt):
            raise ValueError("score_listed needs decoding.constrained=true and candidates_in_prompt=true: the grammar "
                             "writes the listed companies' names")
        return self

    @property
    def answer_prefix(self) -> str:
        """The prefilled start of every answer ("" without ``prefill_json``)."""
        from kgfin.llm.prompts import ANSWER_PREFIX

        return ANSWER_PREFIX if self.prefill_json else ""


class WarmStartConfig(KgfinConfig):
    """The supervised warm start before PPO (module docstring)."""

    enabled: bool = Field(False, description="fine-tune the alignment LoRA on past events' realised answers first")
    months: int = Field(6, ge=1, description="news months before the first aligned month the targets come from")
    max_events_per_month: int | None = Field(None, ge=1, description="cap per month (None: every news item)")
    firms: int = Field(4, ge=0, description="ripple candidates per answer besides the focal firm (largest target "
                                            "|move|; fewer where decoding.max_companies allows fewer)")
    target: Literal["realised", "ridge_rule", "gnn"] = Field(
        "realised",
        description="the ripple firms' target moves: realised (their residual over the outcome window: mostly noise "
                    "at the ripple's signal-to-noise), ridge_rule (the ripple evaluation's point-in-time ridge on "
                    "relation strengths, a denoised teacher) or gnn (its relational GNN row, slower): "
                    "kgfin.evaluate.teacher; `kgfin align` builds it")
    loss: Literal["choices", "tokens"] = Field(
        "choices",
        description="choices: the answer's log-likelihood under the answer grammar (the constrained sampler's "
                    "distribution, as PPO's log-probabilities: only where the grammar leaves a choice, i.e. which "
                    "company, which direction, what size, whether another entry follows); tokens: the causal-LM "
                    "cross-entropy of every answer token, the grammar's forced text included")
    epochs: int = Field(2, ge=1, description="passes over the targets")
    batch_size: int = Field(8, ge=1, description="answers per gradient step")
    micro_batch_size: int = Field(
        2, ge=1, description="answers per forward/backward pass, gradients accumulated to batch_size (same step; "
                             "memory grows with it: 8 candidate-listing prompts of ~700 tokens at once took 24 GB)")
    learning_rate: float = Field(2e-4, gt=0, description="AdamW learning rate")
    seed: int = Field(0, description="order of the targets")


class ExperimentalConfig(KgfinConfig):
    """Switches tried in measured runs (docs/lab/alignment-runs.md) that are not part of the method; all off by
    default. They may change or go without notice."""

    samples_per_prompt: int = Field(
        1, ge=1, description="ppo: answers sampled per prompt; above 1 each answer's score is taken relative to the "
                             "mean score of the prompt's other answers (leave-one-out baseline, as RLOO)")
    group_normalize: bool = Field(
        False, description="ppo, samples_per_prompt > 1: each answer's score relative to its prompt's answers is "
                           "(score - group mean) / group std (GRPO) instead of the leave-one-out difference (RLOO)")
    normalize_scores: bool = Field(
        False, description="ppo: divide each rollout's scores (after the leave-one-out baseline) by their standard "
                           "deviation, so that the task reward is O(1) against the per-token KL penalty")
    missing_eos_penalty: float = Field(
        0.0, ge=0, description="ppo: subtracted from the score of responses cut off by max_new_tokens")
    reward_scope: Literal["item", "batch"] = Field(
        "item", description="item: R on each answer's own Z and eps (the paper's; blind to an answer's size); batch: R "
                            "on the answer's item stacked with its batch's other items (their answers averaged), so "
                            "that an answer's size relative to the other news pays (eval/ripple_headroom.py)")
    init_from: str | None = Field(
        None, description="start from an earlier run's final/ folder (its alignment LoRA or backbone delta) instead "
                          "of from zero; the value head and optimiser start fresh. Ignored when the run resumes from "
                          "its own checkpoint")


class AlignConfig(KgfinConfig):
    """Market alignment after FinRipple's algorithm 1: PPO over months, knowledge adapters frozen."""

    model: str = Field(DEFAULT_MODEL, description="base model spec (see kgfin.llm.models)")
    algo: Literal["ppo", "grpo", "rloo"] = Field(
        "ppo", description="ppo: kgfin's PPO (value head, GAE, per-token KL); grpo / rloo: TRL's trainers with the same "
                           "reward (group-relative baselines; train: lora only)")
    num_generations: int = Field(
        4, ge=2, description="grpo / rloo: answers sampled per news item (ppo.batch_size must be a multiple)")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="where alignment, prediction and ripple evaluation run the model: auto = the GPU when "
                            "torch sees one, else the CPU")
    knowledge: bool = Field(
        True, description="load each month's knowledge adapter (kg-YYYY-MM, merged and frozen); False aligns the base "
                          "model alone (an ablation)")
    train: Literal["lora", "backbone"] = Field(
        "lora", description="lora: a new alignment LoRA on top of the frozen knowledge adapter; backbone: every base "
                            "weight, as in the paper (memory: a second full copy for the reference)")
    lora: LoraSettings = Field(
        default_factory=lambda: LoraSettings(r=8, alpha=16), description="the alignment LoRA (train: lora)")
    epochs: int = Field(1, ge=1, description="passes over each month's events")
    save_steps: int = Field(10, ge=0, description="checkpoint every this many PPO steps (0: only at month ends)")
    seed: int = Field(0, description="alignment LoRA initialisation")
    events: EventConfig = Field(default_factory=EventConfig)
    impact: ImpactRewardConfig = Field(default_factory=ImpactRewardConfig)
    ppo: PPOConfig = Field(default_factory=PPOConfig)
    decoding: DecodingConfig = Field(default_factory=DecodingConfig)
    warm_start: WarmStartConfig = Field(default_factory=WarmStartConfig)
    experimental: ExperimentalConfig = Field(default_factory=ExperimentalConfig)

    @model_validator(mode="after")
    def _check_algo(self) -> AlignConfig:
        if self.experimental.reward_scope == "batch" and self.impact.reward.kind != "paper":
            raise ValueError(f"experimental.reward_scope=batch is defined for impact.reward.kind=paper only (got "
                             f"{self.impact.reward.kind}, which already pays for size)")
        if self.decoding.constrained and self.algo != "ppo":
            raise ValueError(f"decoding.constrained (the default) is implemented for algo=ppo only (TRL's {self.algo} "
                             "trainer samples without it): add --set decoding.constrained=false")
        if self.ppo.batch_size % self.experimental.samples_per_prompt:
            raise ValueError(f"ppo.batch_size ({self.ppo.batch_size}) must be a multiple of "
                             f"experimental.samples_per_prompt ({self.experimental.samples_per_prompt})")
        if self.algo != "ppo":
            if self.train != "lora":
                raise ValueError(f"algo={self.algo} needs train=lora: TRL would rebuild the reference from the base "
                                 "model's name and lose the month's knowledge adapter")
            if self.ppo.batch_size % self.num_generations:
                raise ValueError(f"ppo.batch_size ({self.ppo.batch_size}) must be a multiple of num_generations "
                                 f"({self.num_generations}) for {self.algo}")
        return self
