"""Factor / news / ripple return models: newsflow embeddings, fusion and mixture models, training.

``kgfin fuse`` in Python::

    from kgfin.config import load_config
    from kgfin.data import load_market
    from kgfin.fusion import FusionConfig, run_fusion, write_outputs

    cfg = load_config(FusionConfig, recipe_path("fusion"), section="fusion")  # kgfin.recipes.recipe_path
    run = run_fusion(load_market("data/synth"), cfg)
    write_outputs(run, "runs/fuse", cfg)

Importing this package does not import torch; :mod:`kgfin.fusion.models` does.
See ``docs/fusion.md``.
"""

from kgfin.fusion.config import MODEL_NAMES, NEWS_MODELS, FusionConfig
from kgfin.fusion.features import FusionInputError, Panel, attach_ripple, build_panel, load_ripple
from kgfin.fusion.ripple import RIPPLE_SOURCES, oracle_ripple, propagation_ripple
from kgfin.fusion.run import FusionRun, evaluate_predictions, run_fusion, write_outputs
from kgfin.fusion.train import (
    FitResult,
    ModelData,
    decoupled_target,
    fit_model,
    prepare_data,
    split_months,
)
from kgfin.llm.embeddings import NewsEmbedder, mean_pool

__all__ = [
    "MODEL_NAMES", "NEWS_MODELS", "RIPPLE_SOURCES", "FitResult", "FusionConfig", "FusionInputError", "FusionRun",
    "ModelData", "NewsEmbedder", "Panel", "attach_ripple", "build_panel", "decoupled_target", "evaluate_predictions",
    "fit_model", "load_ripple", "mean_pool", "oracle_ripple", "prepare_data", "propagation_ripple", "run_fusion",
    "split_months", "write_outputs",
]
