"""The recipe rule: one shape, shipped with the package, each default stated once, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgfin.align.config import AlignConfig
from kgfin.cli import app
from kgfin.config import ConfigError, load_sections, read_recipes
from kgfin.evaluate.ripple import RippleEvalConfig
from kgfin.evaluate.scores import RippleScoresConfig
from kgfin.fusion.config import FusionConfig
from kgfin.fusion.newsflow import NewsflowStudyConfig
from kgfin.inject import InjectConfig
from kgfin.inject.evaluation import MemoryEvalConfig
from kgfin.instruct import InstructConfig
from kgfin.pipeline import RECIPE_KEYS, load_profile
from kgfin.recipes import PROFILES, RECIPES_DIR, recipe_path

runner = CliRunner()

STAGE_RECIPES = {
    "align": {"align": AlignConfig},
    "inject": {"instruct": InstructConfig, "inject": InjectConfig, "memory_eval": MemoryEvalConfig},
    "ripple_eval": {"ripple_eval": RippleEvalConfig},
    "fusion": {"fusion": FusionConfig},
    "newsflow": {"newsflow": NewsflowStudyConfig},
    "ripple_scores": {"ripple_scores": RippleScoresConfig},
}


@pytest.mark.parametrize("name", sorted(STAGE_RECIPES))
def test_shipped_stage_recipes_state_exactly_the_config_defaults(name: str) -> None:
    classes = STAGE_RECIPES[name]
    recipe = read_recipes([recipe_path(name)])
    assert set(recipe) == set(classes)  # the command's sections, nothing else
    loaded = load_sections(classes, [recipe_path(name)], known=RECIPE_KEYS)
    for section, cls in classes.items():
        assert loaded[section] == cls(), f"{name}.yaml's {section} section differs from {cls.__name__}'s defaults"


def test_every_shipped_recipe_is_a_profile_or_a_stage_recipe() -> None:
    shipped = {p.stem for p in RECIPES_DIR.glob("*.yaml")}
    assert shipped == set(STAGE_RECIPES) | {Path(p).stem for p in PROFILES.values()}
    for profile in PROFILES:
        load_profile(profile)


def test_every_command_reads_its_sections_from_the_pipeline_recipe() -> None:
    demo = recipe_path("demo")
    profile = load_profile("default")
    got = load_sections({"ripple_eval": RippleEvalConfig, "align": AlignConfig}, [demo], known=RECIPE_KEYS)
    assert got["align"] == profile.align and got["ripple_eval"] == profile.ripple_eval
    assert load_sections({"inject": InjectConfig}, [demo], known=RECIPE_KEYS)["inject"] == profile.inject
    # later recipes win key by key; --set wins over both and is routed by section
    both = load_sections({"ripple_eval": RippleEvalConfig, "align": AlignConfig},
                         [recipe_path("ripple_eval"), demo], ["align.ppo.batch_size=4", "recall_k=5"], RECIPE_KEYS)
    assert both["align"].ppo.batch_size == 4 and both["align"].ppo.max_new_tokens == 64
    assert both["ripple_eval"].recall_k == 5 and both["ripple_eval"].max_events_per_month == 8


def test_missing_recipe_and_unknown_keys_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="recipe not found: .*nope.yaml"):
        load_sections({"align": AlignConfig}, [tmp_path / "nope.yaml"])
    with pytest.raises(ConfigError, match=r"align\.ppo\.batchsize: unknown key \(did you mean align\.ppo\.batch_size\?\)"):
        load_sections({"align": AlignConfig}, [], ["ppo.batchsize=4"])
    with pytest.raises(ConfigError, match=r"ripple_eval\.methds: unknown key \(did you mean ripple_eval\.methods\?\)"):
        load_sections({"ripple_eval": RippleEvalConfig, "align": AlignConfig}, [], ["methds=[oracle]"])
    flat = tmp_path / "flat.yaml"
    flat.write_text("model: tiny-random-llama\nppo:\n  batch_size: 2\n")
    with pytest.raises(ConfigError, match="unknown section 'model'.*put the settings under one"):
        load_sections({"align": AlignConfig}, [flat], known=RECIPE_KEYS)
    typo = tmp_path / "typo.yaml"
    typo.write_text("algn:\n  seed: 1\n")
    with pytest.raises(ConfigError, match=r"unknown section 'algn' \(did you mean align\?\)"):
        load_sections({"align": AlignConfig}, [typo], known=RECIPE_KEYS)


def test_the_cli_refuses_a_missing_recipe_and_a_mistyped_set(tmp_path: Path) -> None:
    r = runner.invoke(app, ["align", "-m", "2015-01", "--config", str(tmp_path / "nope.yaml")])
    assert r.exit_code != 0 and "recipe not found" in str(r.exception)
    r = runner.invoke(app, ["evaluate", "ripple", "-m", "2015-01", "--set", "align.decodng.constrained=true"])
    assert r.exit_code != 0 and "did you mean align.decoding" in str(r.exception)
    r = runner.invoke(app, ["predict", "--events", str(tmp_path / "n.csv"), "--config", str(recipe_path("demo")),
                            "--set", "ppo.batch_size=x"])
    assert r.exit_code != 0 and "align.ppo.batch_size" in str(r.exception)  # the demo recipe itself was accepted


@pytest.mark.integration
def test_the_cli_runs_from_another_directory(tmp_path: Path) -> None:
    """The profiles come from the package, not the working directory."""
    out = subprocess.run([sys.executable, "-m", "kgfin.cli", "demo", "--profile", "tiny", "--run-dir", "run",
                          "--stage", "data"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "run" / "data" / "companies.parquet").exists()


@pytest.mark.integration
def test_the_wheel_ships_the_recipes(tmp_path: Path) -> None:
    import shutil
    import zipfile

    root = Path(__file__).resolve().parents[1]
    src = tmp_path / "src"
    shutil.copytree(root, src, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "data", "*.egg-info", "build",
                                                            "__pycache__", ".kgfin"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("kgfin-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"kgfin/recipes/{p.name}" for p in RECIPES_DIR.glob("*.yaml")} <= names
