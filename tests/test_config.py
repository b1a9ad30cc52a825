"""Typed config loading: defaults < YAML < overrides, unknown keys are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgfin.config import ConfigError, apply_overrides, load_config
from kgfin.data.synth import SynthConfig


def test_defaults_yaml_and_overrides(tmp_path: Path) -> None:
    recipe = tmp_path / "synth.yaml"
    recipe.write_text("companies: 50\nevents:\n  rate: 0.4\n")
    cfg = load_config(SynthConfig, recipe, ["events.rate=0.5", "start=2015-03"])
    assert cfg.companies == 50  # from YAML
    assert cfg.events.rate == 0.5  # override beats YAML
    assert cfg.start == "2015-03"  # stays a string
    assert cfg.months == SynthConfig().months  # default


def test_unknown_key_is_an_error_naming_the_key(tmp_path: Path) -> None:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("events:\n  rte: 0.4\n")
    with pytest.raises(ConfigError, match=r"events\.rte: unknown key"):
        load_config(SynthConfig, recipe)
    with pytest.raises(ConfigError, match=r"companys: unknown key"):
        load_config(SynthConfig, overrides=["companys=3"])


def test_invalid_values_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="companies"):
        load_config(SynthConfig, overrides=["companies=5"])  # below the minimum of 20
    with pytest.raises(ConfigError, match="start"):
        load_config(SynthConfig, overrides=["start=2015-13"])
    with pytest.raises(ConfigError, match="not of the form key=value"):
        load_config(SynthConfig, overrides=["companies"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(SynthConfig, tmp_path / "missing.yaml")


def test_section_of_a_recipe(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("synth:\n  seed: 9\nother: {}\n")
    assert load_config(SynthConfig, recipe, section="synth").seed == 9
    with pytest.raises(ConfigError, match="no section 'nope'"):
        load_config(SynthConfig, recipe, section="nope")


def test_apply_overrides_does_not_mutate() -> None:
    base = {"a": {"b": 1}}
    out = apply_overrides(base, {"a.b": 2})
    assert base == {"a": {"b": 1}} and out == {"a": {"b": 2}}
