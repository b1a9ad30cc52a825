"""Typed configuration: defaults < YAML recipe < command-line overrides.

Every trainer, generator and model in kgfin has a pydantic config class deriving from
:class:`KgfinConfig`; its field defaults are the only place a default is stated. Unknown
keys are errors naming the closest valid key (a typo never silently falls back to a
default), YAML is read with ``safe_load``, and overrides are dotted ``key=value`` strings
whose values are parsed as YAML scalars (``events.rate=0.3``, ``start=2015-01``).

**One recipe shape.** A recipe is a YAML mapping of *sections*, one per stage config
(``synth``, ``graph``, ``instruct``, ``inject``, ``memory_eval``, ``align``,
``ripple_eval``, ``fusion``), plus the pipeline's own keys (``align_months``, ...): the
pipeline profiles (``kgfin demo``) hold every section, a stage recipe the sections of one
command. Every command reads its own sections from any recipe (:func:`load_sections`), so
``kgfin align --config kgfin/recipes/demo.yaml`` aligns with the demo's settings. A recipe
path that does not exist is an error.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from kgfin.errors import KgfinError

__all__ = ["ConfigError", "KgfinConfig", "apply_overrides", "load_config", "load_sections", "read_recipes",
           "resolve_config", "route_overrides"]


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


def _closest_key(cls: type[BaseModel], loc: Sequence[Any], prefix: str = "") -> str:
    """" (did you mean X?)" for an unknown key at ``loc`` of ``cls``, or "" when nothing is close."""
    model: Any = cls
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    match = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return f" (did you mean {prefix}{'.'.join([*map(str, loc[:-1]), match[0]])}?)" if match else ""


def _format_validation_error(err: ValidationError, source: str, cls: type[BaseModel] | None = None,
                             prefix: str = "") -> str:
    lines = [f"invalid configuration ({source}):"]
    for e in err.errors():
        loc = prefix + ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            msg = "unknown key" + (_closest_key(cls, e["loc"], prefix) if cls is not None else "")
        else:
            msg = e["msg"]
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
        raise ConfigError(_format_validation_error(err, source, cls)) from None


def read_recipes(paths: Sequence[str | Path]) -> dict[str, Any]:
    """The recipes at ``paths`` merged in order (a later file wins key by key, sections merged deeply).

    Every path must exist and hold a YAML mapping (empty files count as empty recipes).
    """
    merged: dict[str, Any] = {}
    for path in map(Path, paths):
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"recipe not found: {path}") from None
        except IsADirectoryError:
            raise ConfigError(f"recipe {path} is a directory, not a YAML file") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a recipe is a mapping of sections, got {type(loaded).__name__}")
        merged = _deep_merge(merged, loaded)
    return merged


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = _deep_copy(base)
    for key, value in update.items():
        out[key] = (_deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict)
                    else value)
    return out


def route_overrides(overrides: Sequence[str], sections: Sequence[str],
                    primary_fields: Collection[str] = ()) -> dict[str, list[str]]:
    """Split ``--set`` overrides by section: ``section.key=v`` goes to ``section`` when ``section`` is one of
    ``sections`` (and not a field of the first, primary section, listed in ``primary_fields``); any other key goes to
    the primary section.

    >>> route_overrides(["align.seed=1", "methods=[oracle]"], ["ripple_eval", "align"])
    {'ripple_eval': ['methods=[oracle]'], 'align': ['seed=1']}
    """
    routed: dict[str, list[str]] = {s: [] for s in sections}
    for item in overrides:
        head, dot, rest = item.partition(".")
        if dot and head in sections and head not in primary_fields and "=" not in head:
            routed[head].append(rest)
        else:
            routed[sections[0]].append(item)
    return routed


def load_sections(
    classes: Mapping[str, type[KgfinConfig]],
    paths: Sequence[str | Path] = (),
    overrides: Sequence[str] = (),
    known: Collection[str] = (),
) -> dict[str, KgfinConfig]:
    """One config per section of ``classes`` (the first is the command's primary section): defaults < the merged
    recipes at ``paths`` < ``overrides`` (routed by :func:`route_overrides`).

    A recipe key that is neither one of ``classes`` nor in ``known`` (the other sections and keys a recipe may hold)
    is an error naming the closest section, as is an unknown key inside a section.
    """
    recipe = read_recipes(paths)
    source = ", ".join(map(str, paths)) or "defaults"
    allowed = [*classes, *known]
    for key in recipe:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            flat = " (a recipe holds sections: put the settings under one, e.g. `align:`)" if key in {
                f for c in classes.values() for f in c.model_fields} else ""
            raise ConfigError(f"{source}: unknown section {key!r}" + (f" (did you mean {hint[0]}?)" if hint else "")
                              + flat + f"; sections: {', '.join(allowed)}")
    primary = next(iter(classes.values()))
    routed = route_overrides(list(overrides), list(classes), primary.model_fields)
    out: dict[str, KgfinConfig] = {}
    for section, cls in classes.items():
        data = recipe.get(section) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: section {section!r} must be a mapping, got {type(data).__name__}")
        if routed[section]:
            data = apply_overrides(data, routed[section])
        try:
            out[section] = cls.model_validate(data)
        except ValidationError as err:
            where = source + (" + --set" if routed[section] else "")
            raise ConfigError(_format_validation_error(err, where, cls, prefix=f"{section}.")) from None
    return out


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
        raise ConfigError(_format_validation_error(err, f"{cls.__name__} arguments", cls)) from None
