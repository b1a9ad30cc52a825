"""Run manifests: what produced an output directory.

Each run directory gets ``kgfin-run.json`` with the command, the resolved config, the
seed, the git revision of the source tree and the versions of the packages that
matter. The manifest holds no timestamps and no absolute paths, so that two runs with
the same inputs write byte-identical output.
"""

from __future__ import annotations

import json
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import BaseModel

__all__ = ["MANIFEST_NAME", "git_revision", "package_versions", "read_manifest", "write_manifest"]

MANIFEST_NAME = "kgfin-run.json"

_PACKAGES = (
    "kgfin", "numpy", "pandas", "pyarrow", "scipy", "statsmodels", "torch", "transformers",
    "peft", "trl", "torch-geometric", "networkx", "falkordb", "neo4j", "linearmodels", "arch",
)


def package_versions(names: tuple[str, ...] = _PACKAGES) -> dict[str, str | None]:
    """Installed versions of ``names`` (None where not installed), plus Python's."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def git_revision() -> str | None:
    """The git revision of the kgfin source tree (with ``-dirty`` if modified), if any."""
    src = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(src), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev or None


def write_manifest(
    out_dir: str | Path,
    command: str,
    config: BaseModel | dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``kgfin-run.json`` into ``out_dir`` and return its path."""
    cfg = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    manifest = {
        "command": command,
        "config": cfg,
        "seed": cfg.get("seed"),
        "git_revision": git_revision(),
        "versions": package_versions(),
        **(extra or {}),
    }
    path = Path(out_dir) / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """Read the manifest of a run directory."""
    return json.loads((Path(run_dir) / MANIFEST_NAME).read_text())
