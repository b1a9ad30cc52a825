"""Every subpackage imports cleanly and cheaply (no torch at import time)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import kgfin


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(kgfin.__path__, prefix="kgfin."))


def test_every_module_imports() -> None:
    for name in _modules():
        importlib.import_module(name)


def test_no_heavy_imports_at_import_time() -> None:
    """Package entry points stay light; modules that define torch nn.Modules are imported explicitly."""
    packages = ["kgfin", *sorted(m.name for m in pkgutil.iter_modules(kgfin.__path__, prefix="kgfin.") if m.ispkg)]
    code = ("import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]; "
            "print(sorted({'torch', 'transformers', 'peft', 'trl'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code, *packages], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
