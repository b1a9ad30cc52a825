"""Every subpackage imports cleanly and cheaply (no torch at import time)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import kgfin

# Modules that exist to define torch modules (nn.Module subclasses need torch at class
# definition). Nothing else may import them at import time; the check below proves it.
TORCH_MODULES = {"kgfin.fusion.models", "kgfin.align.ppo", "kgfin.gnn.layers", "kgfin.gnn.model"}


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(kgfin.__path__, prefix="kgfin."))


def test_every_module_imports() -> None:
    for name in _modules():
        importlib.import_module(name)


def test_no_heavy_imports_at_import_time() -> None:
    """Every module but those defining torch nn.Modules imports without torch and friends."""
    code = ("import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]; "
            "print(sorted({'torch', 'transformers', 'peft', 'trl'} & set(sys.modules)))")
    light = [m for m in _modules() if m not in TORCH_MODULES]
    out = subprocess.run([sys.executable, "-c", code, *light], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
