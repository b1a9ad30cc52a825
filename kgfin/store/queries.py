"""Read-only Cypher: the write check, parameter handling and the named query library.

User Cypher is refused when it could write (a keyword scan over the text with strings,
comments and quoted names removed; the backends also run it in read-only mode where the
server supports that). Values travel only as parameters: they are validated here and
never pasted into query text.

Named queries live in ``graphdb/queries/<name>.cypher``::

    // Suppliers of a company in a month, largest first.
    // :param ticker str   the customer
    // :param month month  'YYYY-MM'
    // :param k int = 20   at most this many rows
    MATCH ...
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kgfin.errors import KgfinError

__all__ = [
    "NamedQuery", "QueryError", "QueryParam", "ReadOnlyError", "check_read_only", "clean_params",
    "graphdb_dir", "load_queries", "parse_param", "query_parameters", "strip_cypher",
]


class QueryError(KgfinError):
    """A query or its parameters are not acceptable."""


class ReadOnlyError(QueryError):
    """A query that could write was given where only reads are allowed."""


# --- the text ----------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<quoted>`[^`]*`)
""", re.S | re.X)


def strip_cypher(cypher: str) -> str:
    """``cypher`` with comments removed and string literals / backquoted names blanked.

    >>> strip_cypher("MATCH (n {name: 'CREATE'}) // DELETE\\nRETURN n.`SET`")
    "MATCH (n {name: ''}) \\nRETURN n.``"
    """
    def repl(m: re.Match[str]) -> str:
        if m.group("comment"):
            return ""
        return m.group(0)[0] * 2
    unterminated = re.search(r"""['"`]""", _TOKEN.sub("", cypher))
    if unterminated:
        raise QueryError(f"unterminated quote {unterminated.group(0)!r} in the query")
    return _TOKEN.sub(repl, cypher)


_WRITE_WORDS = ("CREATE", "MERGE", "DELETE", "DETACH", "SET", "REMOVE", "DROP", "FOREACH", "LOAD",
                "ALTER", "GRANT", "DENY", "REVOKE", "RENAME", "START", "STOP", "TERMINATE")
_WRITE = re.compile(r"(?<![.\w$:])(" + "|".join(_WRITE_WORDS) + r")\b", re.I)
_CALL = re.compile(r"(?<![.\w$:])CALL\s+(?!\{)([\w.]+)", re.I)
READ_PROCEDURES = frozenset({
    "db.labels", "db.relationshiptypes", "db.propertykeys", "db.indexes", "db.constraints",
    "db.schema.visualization", "db.schema.nodetypeproperties", "db.schema.reltypeproperties",
})


def check_read_only(cypher: str) -> None:
    """Raise :class:`ReadOnlyError` if ``cypher`` could write (or calls a procedure not known to be read-only)."""
    text = strip_cypher(cypher)
    m = _WRITE.search(text)
    if m:
        raise ReadOnlyError(
            f"refused: the query contains {m.group(1).upper()!r}, which writes to the graph; "
            "graph queries are read-only (pass values as parameters, not in the query text)")
    for call in _CALL.finditer(text):
        if call.group(1).lower() not in READ_PROCEDURES:
            raise ReadOnlyError(f"refused: CALL {call.group(1)} is not a known read-only procedure "
                                f"(allowed: {', '.join(sorted(READ_PROCEDURES))})")


_PARAM_REF = re.compile(r"\$(\w+)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def query_parameters(cypher: str) -> set[str]:
    """Names of the ``$parameters`` a query uses."""
    return set(_PARAM_REF.findall(strip_cypher(cypher)))


# --- parameter values ---------------------------------------------------------------------------

def _clean_value(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise QueryError(f"parameter {where}: {value} is outside the 64-bit integer range the graph stores use")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QueryError(f"parameter {where}: {value} is not a finite number")
        return float(value)
    if hasattr(value, "dtype") and hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # numpy scalar
        return _clean_value(value.item(), where)
    if isinstance(value, list | tuple):
        return [_clean_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not _NAME.fullmatch(k):
                raise QueryError(f"parameter {where}: map key {k!r} must be a plain name")
            out[k] = _clean_value(v, f"{where}.{k}")
        return out
    if hasattr(value, "isoformat"):
        raise QueryError(f"parameter {where}: dates and times are not supported; pass '{value.isoformat()}' as a string")
    raise QueryError(f"parameter {where}: unsupported type {type(value).__name__} "
                     "(use strings, numbers, booleans, null, lists or maps)")


def clean_params(params: dict[str, Any] | None, cypher: str | None = None) -> dict[str, Any]:
    """Validate parameter names and values (plain JSON-like values only).

    With ``cypher``: every ``$name`` the query uses must be given, and no other.
    """
    params = dict(params or {})
    for name in params:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise QueryError(f"parameter name {name!r} is not a plain name (letters, digits, _)")
    out = {k: _clean_value(v, k) for k, v in params.items()}
    if cypher is not None:
        used = query_parameters(cypher)
        missing, unused = sorted(used - set(out)), sorted(set(out) - used)
        if missing:
            raise QueryError(f"missing parameter(s) {', '.join(missing)} (give them as --param name=value)")
        if unused:
            raise QueryError(f"parameter(s) {', '.join(unused)} not used by the query")
    return out


def parse_param(item: str) -> tuple[str, Any]:
    """Parse ``name=value`` from the command line; the value is read as a YAML scalar or list.

    Dates stay strings (``2015-01-02``), text that is not valid YAML stays text.

    >>> parse_param("k=5"), parse_param("ticker=ABC"), parse_param("day=2015-01-02")
    (('k', 5), ('ticker', 'ABC'), ('day', '2015-01-02'))
    """
    if "=" not in item:
        raise QueryError(f"--param {item!r} is not of the form name=value")
    name, raw = item.split("=", 1)
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise QueryError(f"--param {item!r}: {name!r} is not a plain name")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if hasattr(value, "isoformat") or isinstance(value, dict):
        value = raw.strip()
    return name, value


# --- the named query library -------------------------------------------------------------------

_TYPES: dict[str, type] = {"str": str, "month": str, "int": int, "float": float, "bool": bool}
_PARAM_LINE = re.compile(r"//\s*:param\s+(\w+)\s+(\w+)(?:\s*=\s*(\S+))?\s*(.*)$")
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


@dataclass(frozen=True)
class QueryParam:
    """A declared parameter of a named query."""

    name: str
    type: str
    default: Any = None
    help: str = ""
    required: bool = True

    def coerce(self, value: Any, query: str) -> Any:
        where = f"query {query}, parameter {self.name}"
        if self.type in ("int", "float") and isinstance(value, str):
            try:
                value = _TYPES[self.type](value)
            except ValueError:
                raise QueryError(f"{where}: expected {self.type}, got {value!r}") from None
        if self.type == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.type == "bool" and isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if self.type in ("str", "month") and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, _TYPES[self.type]) or (self.type == "int" and isinstance(value, bool)):
            raise QueryError(f"{where}: expected {self.type}, got {value!r}")
        if self.type == "month" and not _MONTH.fullmatch(value):
            raise QueryError(f"{where}: expected a month 'YYYY-MM', got {value!r}")
        return value


@dataclass(frozen=True)
class NamedQuery:
    """A parameterised read-only query from the library."""

    name: str
    description: str
    cypher: str
    params: tuple[QueryParam, ...] = field(default_factory=tuple)
    path: Path | None = None

    def bind(self, values: dict[str, Any] | None = None) -> dict[str, Any]:
        """Check and convert ``values`` against the declared parameters; apply defaults."""
        values = dict(values or {})
        known = {p.name for p in self.params}
        unknown = sorted(set(values) - known)
        if unknown:
            raise QueryError(f"query {self.name}: unknown parameter(s) {', '.join(unknown)} (takes: {', '.join(sorted(known))})")
        out = {}
        for p in self.params:
            if p.name in values:
                out[p.name] = p.coerce(values[p.name], self.name)
            elif not p.required:
                out[p.name] = p.default
            else:
                raise QueryError(f"query {self.name}: missing parameter {p.name} ({p.type}{': ' + p.help if p.help else ''})")
        return out


def _parse_query(path: Path) -> NamedQuery:
    text = path.read_text()
    lines = text.splitlines()
    if not lines or not lines[0].startswith("//"):
        raise QueryError(f"{path}: line 1 must be a '// description' comment")
    description = lines[0].lstrip("/").strip()
    params = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.lstrip().startswith("// :param"):
            continue
        m = _PARAM_LINE.match(line.strip())
        if not m or m.group(2) not in _TYPES:
            raise QueryError(f"{path}:{n}: expected '// :param NAME TYPE [= DEFAULT] [help]' with TYPE in {sorted(_TYPES)}")
        name, kind, default, help_ = m.groups()
        p = QueryParam(name, kind, help=help_.strip(), required=default is None)
        if default is not None:
            p = QueryParam(name, kind, p.coerce(yaml.safe_load(default), path.stem), help_.strip(), required=False)
        params.append(p)
    declared, used = {p.name for p in params}, query_parameters(text)
    if declared != used:
        raise QueryError(f"{path}: declared parameters {sorted(declared)} differ from those used {sorted(used)}")
    check_read_only(text)
    return NamedQuery(path.stem, description, text, tuple(params), path)


def graphdb_dir() -> Path:
    """The ``graphdb`` folder (schema and queries): ``$KGFIN_GRAPHDB_DIR``, the source tree, or the install's share/."""
    candidates = []
    if os.environ.get("KGFIN_GRAPHDB_DIR"):
        candidates.append(Path(os.environ["KGFIN_GRAPHDB_DIR"]))
    candidates += [Path(__file__).resolve().parents[2] / "graphdb", Path(sys.prefix) / "share" / "kgfin" / "graphdb"]
    for c in candidates:
        if (c / "schema.cypher").is_file():
            return c
    raise KgfinError("graphdb folder (schema.cypher, queries/) not found; set KGFIN_GRAPHDB_DIR "
                     f"(looked in: {', '.join(map(str, candidates))})")


def load_queries(directory: str | Path | None = None) -> dict[str, NamedQuery]:
    """All named queries in ``directory`` (default ``graphdb/queries``), by name."""
    directory = Path(directory) if directory is not None else graphdb_dir() / "queries"
    return {q.name: q for q in (_parse_query(p) for p in sorted(directory.glob("*.cypher")))}
