"""GnnConfig: the settings of the relational GNN ripple model, each default stated once here."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from kgfin.config import KgfinConfig

__all__ = ["STORE_RELATIONS", "GnnConfig"]

STORE_RELATIONS = ("SUPPLIES", "SHARES_DIRECTOR", "CO_HELD", "TECH_SIMILAR")


class GnnConfig(KgfinConfig):
    """Model, training and point-in-time settings of :mod:`kgfin.gnn`."""

    relations: list[str] = Field(
        default_factory=lambda: list(STORE_RELATIONS),
        description="store relations the model passes messages over (SUPPLIES gives two edge types: supplier -> "
                    "customer and customer -> supplier); the relation ablation drops one at a time")
    hidden: int = Field(32, ge=1, description="hidden channels per node")
    layers: int = Field(2, ge=1, description="relational layers (2: the second supply-chain hop is reachable)")
    activation: Literal["tanh", "relu", "identity"] = Field(
        "tanh", description="nonlinearity after each layer (tanh is odd: with bias-free layers, flipping the event "
                            "signal flips every score)")
    loss: Literal["huber", "mse"] = Field(
        "huber", description="training loss on the scaled targets (huber: other events' large moves on the same day "
                             "do not dominate)")
    huber_delta: float = Field(1.0, gt=0, description="huber: where the loss turns linear, in target sd")
    stop_on: Literal["rank_ic", "loss"] = Field(
        "rank_ic", description="early stopping: the validation month's mean per-event rank IC (the evaluation's "
                               "headline) or its loss")
    lr: float = Field(0.003, gt=0, description="Adam learning rate")
    weight_decay: float = Field(1e-4, ge=0, description="Adam weight decay")
    max_epochs: int = Field(100, ge=1, description="epochs at most (one epoch: every training event once)")
    min_epochs: int = Field(
        10, ge=1, description="early stopping picks no epoch before this one (a validation month of ~80 events "
                              "measures mean rank IC to about +-0.02, so an epoch-1 pick is noise)")
    patience: int = Field(15, ge=1, description="early stopping: epochs without a better validation loss")
    batch_events: int = Field(64, ge=1, description="events per optimisation step (the events of one graph month)")
    train_months: int = Field(20, ge=2, description="months of earlier news the model learns from (the latest "
                                                    "eligible one is the validation month); 20 was chosen over 12 "
                                                    "on validation months (docs/gnn.md)")
    min_train_events: int = Field(20, ge=1, description="fewer eligible training events is an error")
    seed: int = Field(0, description="weight initialisation and batch order (of the first ensemble member)")
    ensemble: int = Field(1, ge=1, description="models fitted per scored month with the seeds seed, seed + 1, ...; "
                                               "their mean score is the score (less seed noise, ensemble x the time)")
    cpu_threads: int = Field(1, ge=1, description="torch CPU threads while fitting and scoring, restored afterwards "
                                                  "(the model is tiny: on a busy 2-core machine one thread was 100x "
                                                  "faster than two)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when visible, else cpu")

    @field_validator("relations")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(STORE_RELATIONS))
        if unknown:
            raise ValueError(f"unknown relation(s) {unknown} (known: {', '.join(STORE_RELATIONS)})")
        if len(set(v)) != len(v):
            raise ValueError(f"relations listed twice: {v}")
        return v
