"""Shared fixtures: small synthetic markets generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgfin.data.synth import SynthConfig, synthesize

SMALL = SynthConfig(companies=40, months=8, seed=7)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic market (40 companies x 8 months), Parquet."""
    out = tmp_path_factory.mktemp("synth") / "small"
    synthesize(SMALL, out, progress=False)
    return out


@pytest.fixture(scope="session")
def default_synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default synthetic market (120 companies x 36 months), Parquet."""
    out = tmp_path_factory.mktemp("synth") / "default"
    synthesize(SynthConfig(), out, progress=False)
    return out
