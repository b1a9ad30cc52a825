"""examples/quickstart.py runs end to end (tiny model) and writes the ripple tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[1]


def test_quickstart_tiny(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"), "--tiny", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "alignment: 2 PPO steps" in out.stdout
    tables = (tmp_path / "tables.md").read_text()
    assert "Table 1 analogue" in tables and "oracle" in tables
    assert (tmp_path / "adapters" / "kg-2014-11" / "adapter_config.json").exists()
