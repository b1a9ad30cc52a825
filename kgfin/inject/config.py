"""Settings of knowledge injection: the LoRA adapter and its training run."""

from __future__ import annotations

from pydantic import Field, model_validator

from kgfin.config import KgfinConfig
from kgfin.llm.models import DEFAULT_MODEL

__all__ = ["InjectConfig", "LoraSettings"]


class LoraSettings(KgfinConfig):
    """The LoRA adapter (PEFT ``LoraConfig``)."""

    r: int = Field(16, ge=1, description="rank (the FinRipple paper used 64 on a 7B model)")
    alpha: int = Field(32, ge=1, description="scaling numerator: updates are scaled by alpha / r")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the LoRA input (paper: 0.1; 0 memorises faster)")
    target_modules: list[str] | str = Field(
        "all-linear",
        description="modules that get adapters; attention-only LoRA learns the answer format but not the facts "
                    "on small models, so the default adapts every linear layer",
    )


class InjectConfig(KgfinConfig):
    """Training one month's knowledge adapter on its instruction pairs (TRL ``SFTTrainer`` underneath)."""

    model: str = Field(DEFAULT_MODEL, description="base model spec (see kgfin.llm.models)")
    lora: LoraSettings = Field(default_factory=LoraSettings)
    epochs: float = Field(12.0, gt=0, description="passes over the pairs (memorising needs many)")
    max_steps: int = Field(-1, description="stop after this many optimiser steps (-1: use epochs)")
    batch_size: int = Field(8, ge=1, description="pairs per optimiser step (per device)")
    grad_accum: int = Field(1, ge=1, description="gradient accumulation steps")
    learning_rate: float = Field(1e-3, gt=0, description="peak learning rate (linear decay after warm-up)")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="share of steps with linear warm-up (a float in [0, 1) is a ratio for transformers)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    max_length: int = Field(160, ge=16, description="token limit per pair (prompt + answer); longer pairs are truncated")
    activation_checkpointing: bool = Field(False, description="recompute activations to save memory (slower; for large models)")
    save_steps: int = Field(50, ge=0, description="checkpoint every this many steps for resuming (0: no checkpoints)")
    logging_steps: int = Field(10, ge=1, description="log loss every this many steps")
    seed: int = Field(0, description="random seed (data order, LoRA initialisation)")

    @model_validator(mode="after")
    def _check_steps(self) -> InjectConfig:
        if self.max_steps == 0:
            raise ValueError("max_steps=0 trains nothing; use -1 to train for `epochs`")
        return self
