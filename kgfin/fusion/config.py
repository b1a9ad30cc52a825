"""Configuration of the factor-news-ripple return models (``kgfin fuse``).

One :class:`FusionConfig` holds every setting, in sections: ``features`` (the stock-month
panel), ``embed`` (the newsflow language model), ``split`` (time-ordered train / validation
/ test), ``train`` (optimiser and protocol), ``model`` (architecture sizes), ``ripple``
(the third modality) and ``lora`` (optional fine-tuning of the language model). Defaults
follow the factor/news paper (Guo & Hauptmann, appendix C.3); ``kgfin/recipes/fusion.yaml``
spells them out. Load with ``load_config(FusionConfig, recipe_path("fusion"), ["train.epochs=5"], section="fusion")``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from kgfin.config import KgfinConfig
from kgfin.llm.embeddings import EmbedConfig

__all__ = [
    "MIXTURE_MODELS", "MODEL_NAMES", "NEWS_MODELS", "EmbedConfig", "FeatureConfig", "FusionConfig",
    "LoraConfig", "ModelConfig", "RippleConfig", "SplitConfig", "TrainConfig",
]

MODEL_NAMES = (
    "factors_alone", "news_alone", "finin", "fusion_combination", "fusion_summation",
    "fusion_attention", "mixture_conventional", "mixture_decoupled",
)
NEWS_MODELS = MODEL_NAMES[1:]  # every model that takes news (and so ripple, when given)
MIXTURE_MODELS = ("mixture_conventional", "mixture_decoupled")


class FeatureConfig(KgfinConfig):
    """The stock-month panel: factors, the news look-back window, the target."""

    news_window_days: float = Field(7.0, gt=0, description="look-back window of headlines before the rebalancing time (days)")
    rebalance_time: str = Field(
        "16:00", pattern=r"^\d{2}:\d{2}$",
        description="time on the month's last trading day at which portfolios are formed; news at or after it "
                    "is not used (it is priced on the next trading day, i.e. in the target month)",
    )
    text: Literal["headline", "headline_body"] = Field("headline", description="text embedded per news item")
    winsorize: float = Field(3.0, gt=0, description="clip cross-sectional factor z-scores at +/- this")
    missing_flags: bool = Field(True, description="add a 0/1 missing indicator per factor (missing z-scores are set to 0)")
    target: Literal["demeaned", "raw"] = Field(
        "demeaned", description="demeaned: next-month return minus its cross-sectional mean; raw: next-month return",
    )


class SplitConfig(KgfinConfig):
    """Time-ordered split of the feature months (each predicts the next month's return)."""

    valid_fraction: float = Field(0.15, gt=0, lt=1, description="share of months for validation (after train)")
    test_fraction: float = Field(0.25, gt=0, lt=1, description="share of months for test (the last ones)")
    valid_start: str | None = Field(None, pattern=r"^\d{4}-\d{2}$", description="first validation feature month (overrides the fraction)")
    test_start: str | None = Field(None, pattern=r"^\d{4}-\d{2}$", description="first test feature month (overrides the fraction)")

    @model_validator(mode="after")
    def _check(self) -> SplitConfig:
        if self.valid_fraction + self.test_fraction >= 0.9:
            raise ValueError("valid_fraction + test_fraction must leave at least 10% of months for training")
        if self.valid_start and self.test_start and self.valid_start >= self.test_start:
            raise ValueError(f"valid_start {self.valid_start} must be before test_start {self.test_start}")
        return self


class TrainConfig(KgfinConfig):
    """Optimisation (paper defaults: batch 32, lr 1e-4 with linear decay, dropout 0.3, wd 1e-4, 10 epochs)."""

    batch_size: int = Field(32, ge=1, description="stock-months per step")
    lr: float = Field(1e-4, gt=0, description="AdamW learning rate (decays linearly to 0 over training)")
    lr_schedule: Literal["linear", "constant"] = Field("linear", description="learning-rate schedule")
    epochs: int = Field(10, ge=1, description="passes over the training months")
    dropout: float = Field(0.3, ge=0, lt=1, description="dropout on the inputs of prediction layers")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay")
    select: Literal["last", "val_loss", "val_ic"] = Field(
        "val_ic", description="which epoch's weights predict the test months: the last, or the best on validation",
    )
    grad_var: bool = Field(True, description="measure the mixture components' gradient variance (costs most of a "
                                             "mixture's training time on a CPU)")
    grad_var_batches: int = Field(
        64, ge=2, description="mini-batches per epoch over which mixture component gradient variance is measured",
    )
    threads: int | None = Field(
        1, ge=1, description="torch CPU threads while training (1 is fastest for these small models; None: torch's default)",
    )


class ModelConfig(KgfinConfig):
    """Architecture sizes and the mixture settings."""

    hidden: int = Field(64, ge=1, description="width of dense layers (factor MLP, fusion heads, gate)")
    proj_dim: int = Field(64, ge=1, description="common width of projected modalities (FININ, summation, attention)")
    mixture_fusion: Literal["fusion_combination", "fusion_summation", "fusion_attention"] = Field(
        "fusion_combination", description="the fusion model used as the third mixture component",
    )
    tau: float = Field(1.0, gt=0, description="decoupled training: temperature of softmax(-error^2 / tau) (target in train-std units)")
    kl_weight: float = Field(1.0, ge=0, description="decoupled training: weight of KL(p_phi || target) in the loss")
    pool_lr: float = Field(1e-3, gt=0, description="learning rate of the attention pooling over token states "
                                                    "(embed.pooling: attention), trained with the return model")


class RippleConfig(KgfinConfig):
    """Ripple scores as the third modality."""

    use: bool = Field(True, description="train the news models with ripple input too, when a ripple table is given")
    source: str | None = Field(None, description="label of the ripple scores in the results table (e.g. 'oracle')")


class LoraConfig(KgfinConfig):
    """Optional LoRA fine-tuning of the language model during training (news models only)."""

    enabled: bool = Field(False, description="fine-tune the language model with LoRA adapters while training")
    r: int = Field(4, ge=1, description="LoRA rank")
    alpha: float = Field(8.0, gt=0, description="LoRA scaling alpha")
    dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout")
    target_modules: list[str] | None = Field(None, description="module names to adapt (None: attention query/value projections)")
    lr: float = Field(1e-4, gt=0, description="learning rate of the LoRA parameters")
    models: list[str] = Field(["news_alone"], description="models trained with fine-tuning (rows 'lora' in the table)")

    @field_validator("models")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [m for m in v if m not in NEWS_MODELS]
        if bad:
            raise ValueError(f"LoRA fine-tuning applies to news models only; unknown or factor-only: {bad}")
        return v


class FusionConfig(KgfinConfig):
    """Everything ``kgfin fuse`` needs besides the data (see docs/fusion.md)."""

    seed: int = Field(0, description="random seed (torch and numpy)")
    models: list[str] = Field(list(MODEL_NAMES), description="models to train, in table order")
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    ripple: RippleConfig = Field(default_factory=RippleConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)

    @field_validator("models")
    @classmethod
    def _known_models(cls, v: list[str]) -> list[str]:
        bad = [m for m in v if m not in MODEL_NAMES]
        if bad:
            raise ValueError(f"unknown model(s) {bad}; choose from {list(MODEL_NAMES)}")
        if not v:
            raise ValueError("at least one model")
        if len(set(v)) != len(v):
            raise ValueError("a model is listed twice")
        return v
