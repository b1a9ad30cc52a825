"""The fusion power study's recipes: the aligned language-model source decodes as the model was trained, and the
grid holds every fusion model."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from kgfin.align import AlignConfig
from kgfin.config import ConfigError, load_sections, read_recipes
from kgfin.fusion import FusionConfig
from kgfin.fusion.config import MODEL_NAMES

ROOT = Path(__file__).parents[1]


def _power_module():
    spec = importlib.util.spec_from_file_location("fusion_power", ROOT / "eval" / "fusion_power.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fusion_power"] = module  # pydantic resolves the config's annotations through it
    spec.loader.exec_module(module)
    return module


def test_the_aligned_overlay_decodes_as_the_alignment_recipe() -> None:
    trained = load_sections({"align": AlignConfig}, [ROOT / "training" / "align-ripple.yaml"],
                            known=["ripple_eval"])["align"]
    power = _power_module()
    recipes = [ROOT / "eval" / "fusion_power.yaml", ROOT / "eval" / "fusion_power_aligned.yaml"]
    cfgs = load_sections({"lm": power.LmConfig, "align": AlignConfig, "ripple_scores": power.RippleScoresConfig},
                         recipes, ["lm.aligned_dir=runs/align22/latest"], known=["synth", "fusion", "study"])
    assert cfgs["align"].decoding == trained.decoding and cfgs["align"].knowledge is False
    assert cfgs["ripple_scores"].max_new_tokens == read_recipes([ROOT / "training" / "align-ripple.yaml"])[
        "ripple_eval"]["max_new_tokens"]
    assert cfgs["lm"].predictor == "aligned" and cfgs["lm"].aligned_dir == Path("runs/align22/latest")
    with pytest.raises(ConfigError, match="needs lm.aligned_dir"):
        load_sections({"lm": power.LmConfig}, recipes, known=["synth", "fusion", "study", "align", "ripple_scores"])


def test_the_power_grid_trains_every_fusion_model() -> None:
    fusion = load_sections({"fusion": FusionConfig}, [ROOT / "eval" / "fusion_power.yaml"],
                           known=["synth", "study", "lm", "ripple_scores", "align"])["fusion"]
    assert sorted(fusion.models) == sorted(MODEL_NAMES)
