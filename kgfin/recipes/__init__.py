"""The shipped recipes, installed with the package: the pipeline profiles and one recipe per command.

* ``demo.yaml`` / ``demo-full.yaml`` / ``demo-tiny.yaml``: the ``kgfin demo`` profiles
  (every section; what they set differs from the config defaults);
* ``align.yaml``, ``inject.yaml`` (instruct, inject, memory_eval), ``ripple_eval.yaml``,
  ``fusion.yaml``: each command's sections with every default written out, as a template to
  copy (a test checks they equal the config classes' defaults).

The shape and the reading rule are :mod:`kgfin.config`'s. This module imports nothing of kgfin.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PROFILES", "RECIPES_DIR", "recipe_path"]

RECIPES_DIR = Path(__file__).resolve().parent
PROFILES = {"default": "demo.yaml", "full": "demo-full.yaml", "tiny": "demo-tiny.yaml"}


def recipe_path(name: str) -> Path:
    """The shipped recipe ``name`` (``"align"`` or ``"align.yaml"``)."""
    path = RECIPES_DIR / (name if name.endswith(".yaml") else f"{name}.yaml")
    if not path.exists():
        shipped = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no shipped recipe {name!r}; shipped: {', '.join(shipped)}")
    return path
