"""Settings of market alignment (``kgfin align``), loaded from ``training/align.yaml``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from kgfin.align.reward import RewardConfig
from kgfin.config import KgfinConfig
from kgfin.inject.config import LoraSettings
from kgfin.llm.models import DEFAULT_MODEL
from kgfin.market.residuals import ResidualConfig

if TYPE_CHECKING:
    from kgfin.llm.grammar import AnswerGrammar
    from kgfin.llm.parse import Universe

__all__ = ["AlignConfig", "EventConfig", "ImpactRewardConfig", "PPOConfig"]


class PPOConfig(KgfinConfig):
    """PPO hyper-parameters (defaults follow TRL's PPOv2 where it has them)."""

    batch_size: int = Field(
        8, ge=1, description="responses per PPO step (one rollout): batch_size / samples_per_prompt prompts, "
                             "samples_per_prompt answers each")
    mini_batch_size: int = Field(4, ge=1, description="rollout rows per gradient step")
    ppo_epochs: int = Field(2, ge=1, description="passes over each rollout")
    learning_rate: float = Field(1e-4, gt=0, description="AdamW learning rate (policy parameters and value head)")
    clip_range: float = Field(0.2, gt=0, description="policy ratio clip epsilon")
    clip_range_value: float = Field(0.2, gt=0, description="value clip range")
    vf_coef: float = Field(0.5, ge=0, description="weight of the value loss")
    kl_coef: float = Field(0.05, ge=0, description="beta: per-token KL penalty to the reference")
    gamma: float = Field(1.0, ge=0, le=1, description="discount")
    lam: float = Field(0.95, ge=0, le=1, description="GAE lambda")
    max_new_tokens: int = Field(96, ge=1, description="response length limit")
    temperature: float = Field(1.0, gt=0, description="sampling temperature of rollouts")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling of rollouts")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient clipping")
    samples_per_prompt: int = Field(
        1, ge=1, description="answers sampled per prompt; above 1 each answer's score is taken relative to the mean "
                             "score of the prompt's other answers (leave-one-out baseline, as RLOO): what the prompt "
                             "itself is worth (a news day's market noise) cancels and only the answers' differences "
                             "drive the update")
    normalize_scores: bool = Field(
        False, description="divide each rollout's scores (after the leave-one-out baseline) by their standard "
                           "deviation, so that the task reward is O(1) whatever its units: the market reward's "
                           "differences are ~0.05, a reward model's ~1, and against 0.05 the per-token KL penalty "
                           "would outweigh the score")
    whiten_advantages: bool = Field(True, description="normalise advantages within each rollout")
    missing_eos_penalty: float = Field(0.0, ge=0, description="subtracted from the score of responses cut off by max_new_tokens")
    stop_at_json_end: bool = Field(
        False, description="end a response where its JSON object closes (counting the answer prefix), as if it "
                           "had emitted EOS: answers stay parseable and rollouts short")
    value_hidden: int = Field(64, ge=1, description="hidden units of the value head")
    seed: int = Field(0, description="sampling and minibatch seed")

    @model_validator(mode="after")
    def _check_samples(self) -> PPOConfig:
        if self.batch_size % self.samples_per_prompt:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of samples_per_prompt "
                             f"({self.samples_per_prompt})")
        return self


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
    refusal_reward: float = Field(
        -0.05, description="reward of an answer that cannot be parsed, names no known company or copies the prompt's "
                           "example; slightly below 0 (a prediction orthogonal to the market) so that refusing is "
                           "never the safe choice: with 0, PPO drifted towards refusing everything")
    reward: RewardConfig = Field(default_factory=RewardConfig)
    scope: Literal["item", "batch"] = Field(
        "item", description="item: R on each answer's own Z and eps (the paper's; blind to an answer's size, since "
                            "the cosine is scale-free and coverage only grows with scale); batch: R on the stacked Z "
                            "and eps of the answer's news item and the other items of its batch (their answers "
                            "averaged), so that an answer's size relative to the other news pays, as in Table 1's "
                            "pooled regression (eval/ripple_headroom.py, batch_reward)")
    residuals: ResidualConfig = Field(default_factory=ResidualConfig)


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
    prefill_json: bool = Field(
        True, description="start every answer with the JSON opening (kgfin.llm.prompts.ANSWER_PREFIX): small models "
                          "otherwise answer in prose and every answer is a refusal")
    constrained_decoding: bool = Field(
        False, description="decode every answer inside the analyst JSON's grammar (kgfin.llm.grammar): names only from "
                           "the universe, integer scores in [-10, 10], the JSON always closes; no answer is a refusal, "
                           "and what the model chooses (companies, signs, sizes) is what the reward judges. Applies "
                           "to PPO rollouts, prediction and every language-model method of the ripple evaluation")
    max_companies: int = Field(
        5, ge=1, description="constrained_decoding: most companies one answer may name (fewer when the token limit "
                             "leaves no room)")
    first_entry: Literal["any", "news"] = Field(
        "any", description="constrained_decoding: any = the answer may open with any company; news = its first "
                           "entry must be a company the news item names (the model still chooses which, its "
                           "direction and size, and any further firms)")
    calibrate_impact_type: bool = Field(
        False, description="constrained_decoding: cancel the model's prior for 'positive' over 'negative' by batch "
                           "calibration on the previous month's news (kgfin.align.calibration); applies wherever the "
                           "grammar does")
    calibration_events: int = Field(
        32, ge=1, description="calibrate_impact_type: news items of the previous month the prior is averaged over")
    knowledge: bool = Field(
        True, description="load each month's knowledge adapter (kg-YYYY-MM, merged and frozen); False aligns the base "
                          "model alone (an ablation)")
    train: Literal["lora", "backbone"] = Field(
        "lora", description="lora: a new alignment LoRA on top of the frozen knowledge adapter; backbone: every base "
                            "weight, as in the paper (memory: a second full copy for the reference)")
    lora: LoraSettings = Field(
        default_factory=lambda: LoraSettings(r=8, alpha=16), description="the alignment LoRA (train: lora)")
    epochs: int = Field(1, ge=1, description="passes over each month's events")
    init_from: str | None = Field(
        None, description="start from an earlier run's final/ folder (its alignment LoRA or backbone delta) instead "
                          "of from zero, e.g. to go on aligning on more news; the value head and optimiser start "
                          "fresh. Ignored when the run resumes from its own checkpoint")
    save_steps: int = Field(10, ge=0, description="checkpoint every this many PPO steps (0: only at month ends)")
    events: EventConfig = Field(default_factory=EventConfig)
    impact: ImpactRewardConfig = Field(default_factory=ImpactRewardConfig)
    ppo: PPOConfig = Field(default_factory=lambda: PPOConfig(max_new_tokens=96, learning_rate=5e-5, temperature=0.7, stop_at_json_end=True))

    seed: int = Field(0, description="alignment LoRA initialisation")

    @property
    def answer_prefix(self) -> str:
        """The prefilled start of every answer ("" without ``prefill_json``)."""
        from kgfin.llm.prompts import ANSWER_PREFIX

        return ANSWER_PREFIX if self.prefill_json else ""

    def answer_grammar(self, tokenizer: Any, universe: Universe, max_new_tokens: int) -> AnswerGrammar | None:
        """The constrained-decoding grammar over ``universe`` (None without ``constrained_decoding``)."""
        if not self.constrained_decoding:
            return None
        from kgfin.llm.grammar import AnswerGrammar

        return AnswerGrammar.for_universe(tokenizer, universe.tickers, universe.names,
                                          max_companies=self.max_companies, max_new_tokens=max_new_tokens)

    def first_entries(self, events: Any, universe: Universe) -> list[frozenset[str] | None] | None:
        """Per event (rows of ``events``), the companies its answer must open with: None for every event with
        ``first_entry: any``; with ``news``, the news' companies of ``universe`` as the grammar writes them (None for
        an item that names none of them)."""
        if self.first_entry == "any":
            return None
        from kgfin.llm.grammar import company_labels

        labels = company_labels(universe.tickers, universe.names)
        return [frozenset(labels[t] for t in tickers if t in labels) or None for tickers in events["tickers"]]

    @model_validator(mode="after")
    def _check_algo(self) -> AlignConfig:
        if self.constrained_decoding and not self.prefill_json:
            raise ValueError("constrained_decoding needs prefill_json=true: the grammar continues the prefilled JSON "
                             "opening")
        if self.first_entry != "any" and not self.constrained_decoding:
            raise ValueError(f"first_entry={self.first_entry} needs constrained_decoding=true: the grammar restricts "
                             "the first entry")
        if self.calibrate_impact_type and not self.constrained_decoding:
            raise ValueError("calibrate_impact_type needs constrained_decoding=true: the bias is added where the "
                             "grammar decides the impact type")
        if self.constrained_decoding and self.algo != "ppo":
            raise ValueError(f"constrained_decoding is implemented for algo=ppo only (TRL's {self.algo} trainer "
                             "samples without it)")
        if self.algo != "ppo":
            if self.train != "lora":
                raise ValueError(f"algo={self.algo} needs train=lora: TRL would rebuild the reference from the base "
                                 "model's name and lose the month's knowledge adapter")
            if self.ppo.batch_size % self.num_generations:
                raise ValueError(f"ppo.batch_size ({self.ppo.batch_size}) must be a multiple of num_generations "
                                 f"({self.num_generations}) for {self.algo}")
        return self
