"""Typed configuration: defaults < YAML recipe < command-line overrides.

Every trainer, generator and model in kgfin has a pydantic config class deriving from
:class:`KgfinConfig`. Unknown keys are errors (a typo never silently falls back to a
default), YAML is read with ``safe_load``, and overrides are dotted ``key=value``
strings whose values are parsed as YAML scalars (``events.rate=0.3``,
``start=2015-01``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from kgfin.errors import KgfinError

__all__ = ["ConfigError", "KgfinConfig", "apply_overrides", "load_config", "resolve_config"]


class ConfigError(KgfinError, ValueError):
    """A configuration could not be read or does not validate."""


class KgfinConfig(BaseModel):
    """Base class of kgfin configs: strict about unknown keys, validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


C = TypeVar("C", bound=KgfinConfig)


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {item!r} has an empty key")
    # Values are YAML scalars, except that YYYY-MM stays a string (YAML would read 2015-01
    # as a string anyway, but 2015-01-02 would become a date).
    value: Any = yaml.safe_load(raw) if raw.strip() else ""
    if hasattr(value, "isoformat"):
        value = raw.strip()
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str] | dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``data`` with dotted overrides applied.

    >>> apply_overrides({"a": {"b": 1}}, ["a.b=2", "c=x"])
    {'a': {'b': 2}, 'c': 'x'}
    """
    out: dict[str, Any] = _deep_copy(data)
    items = (
        [(k.split("."), v) for k, v in overrides.items()]
        if isinstance(overrides, dict)
        else [_parse_override(o) for o in overrides]
    )
    for path, value in items:
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {'.'.join(path)}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return out


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def load_config(
    cls: type[C],
    path: str | Path | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    section: str | None = None,
) -> C:
    """Build ``cls`` from its defaults, an optional YAML file and overrides.

    ``section`` selects a top-level key of the YAML file (a recipe may hold the configs
    of several stages). Errors name the file and the offending key.
    """
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if section is not None:
            if section not in loaded:
                raise ConfigError(f"{path}: no section {section!r} (has: {sorted(loaded)})")
            loaded = loaded[section] or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        data = loaded
    if overrides:
        data = apply_overrides(data, overrides)
        source += " + overrides"
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None


def resolve_config(cls: type[C], config: C | None = None, overrides: dict[str, Any] | None = None) -> C:
    """``config`` (or ``cls``'s defaults) with keyword ``overrides`` applied, validated.

    Lets library functions take ``config=`` and/or plain keyword arguments:
    ``residuals(r, f, model="ff5")`` and ``residuals(r, f, config=cfg)`` are both valid.
    """
    if config is not None and not isinstance(config, cls):
        raise ConfigError(f"expected a {cls.__name__}, got {type(config).__name__}")
    if not overrides:
        return config if config is not None else cls()
    data = config.model_dump() if config is not None else {}
    data.update(overrides)
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, f"{cls.__name__} arguments")) from None
