"""Graph stores: the embedded FalkorDB default and Neo4j over Bolt, behind one interface.

    from kgfin.store import open_store
    with open_store() as store:                        # .kgfin/graph, or $KGFIN_GRAPH_URI
        store.write_snapshot(snap)
        store.run_query("suppliers", {"ticker": "ABC", "month": "2014-06"})

Where the store is (first that is set): the ``target`` argument, ``KGFIN_GRAPH_URI`` in the
environment, ``KGFIN_GRAPH_URI`` in ``./.env``, else the directory ``.kgfin/graph``.
``bolt://``/``neo4j://`` URIs (and their ``+s``/``+ssc`` forms) open Neo4j with
``KGFIN_GRAPH_USER``, ``KGFIN_GRAPH_PASSWORD``, ``KGFIN_GRAPH_DATABASE``;
``redis://``/``unix://`` URLs open a FalkorDB server that kgfin does not manage; anything
else is a data directory for the embedded FalkorDB.

Exploration queries (``query`` / ``run_query``) are stopped by the server after
``KGFIN_GRAPH_QUERY_TIMEOUT`` seconds (default 60) and return at most
``KGFIN_GRAPH_MAX_ROWS`` rows (default 100,000; the limit is pushed into the query).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kgfin.errors import KgfinError
from kgfin.store.base import GraphStore, StoreError, WriteSummary
from kgfin.store.falkor import EmbeddedServer, FalkorStore, ServerStatus
from kgfin.store.neo4j import Neo4jStore
from kgfin.store.pipeline import (
    build_into_store,
    expand_months,
    load_graph_tables,
    required_snapshots,
    stored_snapshots,
)
from kgfin.store.queries import (
    NamedQuery,
    QueryError,
    ReadOnlyError,
    check_read_only,
    clean_params,
    load_queries,
    parse_param,
)

__all__ = [
    "DEFAULT_STORE_DIR", "EmbeddedServer", "FalkorStore", "GraphStore", "NamedQuery", "Neo4jStore",
    "QueryError", "ReadOnlyError", "ServerStatus", "StoreError", "WriteSummary", "build_into_store",
    "check_read_only", "clean_params", "expand_months", "graph_settings", "is_neo4j_uri",
    "load_graph_tables", "load_queries", "open_store", "parse_param", "read_env_file", "required_snapshots",
    "store_target", "stored_snapshots",
]

DEFAULT_STORE_DIR = Path(".kgfin/graph")
ENV_KEYS = ("KGFIN_GRAPH_URI", "KGFIN_GRAPH_USER", "KGFIN_GRAPH_PASSWORD", "KGFIN_GRAPH_DATABASE",
            "KGFIN_GRAPH_BATCH_SIZE", "KGFIN_GRAPH_QUERY_TIMEOUT", "KGFIN_GRAPH_MAX_ROWS")
_NEO4J_SCHEMES = ("bolt://", "bolt+s://", "bolt+ssc://", "neo4j://", "neo4j+s://", "neo4j+ssc://")
_FALKOR_SCHEMES = ("redis://", "rediss://", "falkor://", "falkors://", "unix://")


def read_env_file(path: str | Path = ".env") -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``.env`` file (comments, ``export`` and quotes allowed); {} if absent."""
    path = Path(path)
    if not path.is_file():
        return {}
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        if "=" not in line:
            raise KgfinError(f"{path}:{n}: expected KEY=VALUE")
        key, value = (s.strip() for s in line.split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[key] = value
    return out


def graph_settings(env_file: str | Path | None = ".env") -> dict[str, str]:
    """The KGFIN_GRAPH_* settings: environment variables over the ``.env`` file."""
    file_values = read_env_file(env_file) if env_file is not None else {}
    return {k: os.environ.get(k, file_values.get(k, "")) for k in ENV_KEYS if os.environ.get(k, file_values.get(k))}


def is_neo4j_uri(target: str | Path) -> bool:
    """True for bolt:// and neo4j:// URIs."""
    return isinstance(target, str) and target.startswith(_NEO4J_SCHEMES)


def store_target(target: str | Path | None = None, env_file: str | Path | None = ".env") -> str | Path:
    """The store that ``open_store(target)`` would open: a URI string or a directory path."""
    if target is not None and target != "":
        return target
    return graph_settings(env_file).get("KGFIN_GRAPH_URI") or DEFAULT_STORE_DIR


def open_store(
    target: str | Path | None = None,
    *,
    env_file: str | Path | None = ".env",
    keep_running: bool = False,
    batch_size: int | None = None,
    create: bool = True,
    **kwargs: Any,
) -> GraphStore:
    """Open the graph store at ``target`` (see the module docstring for how it is chosen).

    ``keep_running`` leaves an embedded server started here running after ``close()``;
    ``batch_size`` sets the rows per write batch (also ``KGFIN_GRAPH_BATCH_SIZE``);
    ``create=False`` refuses an embedded store directory that holds no store (for reading).
    """
    settings = graph_settings(env_file)
    target = store_target(target, env_file)
    if batch_size is None and settings.get("KGFIN_GRAPH_BATCH_SIZE"):
        try:
            batch_size = int(settings["KGFIN_GRAPH_BATCH_SIZE"])
        except ValueError:
            raise KgfinError(f"KGFIN_GRAPH_BATCH_SIZE must be an integer, got {settings['KGFIN_GRAPH_BATCH_SIZE']!r}") from None
    extra = {"batch_size": batch_size} if batch_size is not None else {}
    guards = {"query_timeout": _number(settings, "KGFIN_GRAPH_QUERY_TIMEOUT", float),
              "max_rows": _number(settings, "KGFIN_GRAPH_MAX_ROWS", int)}
    store: GraphStore
    if is_neo4j_uri(target):
        store = Neo4jStore(str(target), settings.get("KGFIN_GRAPH_USER"), settings.get("KGFIN_GRAPH_PASSWORD"),
                           database=settings.get("KGFIN_GRAPH_DATABASE"), **extra, **kwargs)
    elif isinstance(target, str) and target.startswith(_FALKOR_SCHEMES):
        store = FalkorStore(url=target, **extra, **kwargs)
    elif isinstance(target, str) and "://" in target:
        raise StoreError(f"unsupported graph store URI {target!r} (use bolt://, neo4j://, redis:// or a directory)")
    else:
        store = FalkorStore(Path(target), keep_running=keep_running, create=create, **extra, **kwargs)
    for name, value in guards.items():
        if value is not None:
            setattr(store, name, value)
    return store


def _number(settings: dict[str, str], key: str, kind: type[int] | type[float]) -> int | float | None:
    """A positive number setting, or None when unset."""
    if key not in settings:
        return None
    try:
        value = kind(settings[key])
    except ValueError:
        raise KgfinError(f"{key} must be a positive {kind.__name__}, got {settings[key]!r}") from None
    if value <= 0:
        raise KgfinError(f"{key} must be a positive {kind.__name__}, got {settings[key]!r}")
    return value
