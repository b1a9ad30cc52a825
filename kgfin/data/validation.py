"""Validation of input tables: every problem found at once, each naming file, rows and column.

:func:`validate_frame` checks one table against its :class:`~kgfin.data.schemas.TableSchema`
and returns the typed table plus the list of problems. Rows are numbered from 1 for the
first data row; for CSV files the file line is given too (the header is line 1).

A problem is an ``error`` (loaders refuse the table) or a ``warning`` (loaders log it and go
on: implausible but possible values, files that are not tables).

Identifiers (tickers, and the text columns of a table's key) are read as written: no
``NA`` / ``None`` / ``null`` conversion (a ticker ``NA`` is a ticker; only an empty cell is
missing), surrounding spaces stripped, case kept. They must be text (not a number or list in
Parquet), at most :data:`MAX_TICKER_CHARS` (tickers) or :data:`MAX_ID_CHARS` characters, free
of control and invisible characters (tabs, zero-width spaces, direction marks), and no two
companies' tickers may differ only by case (``sbb`` and ``SBB``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from kgfin.data.schemas import Column, TableSchema
from kgfin.errors import KgfinError

__all__ = ["MAX_ID_CHARS", "MAX_TICKER_CHARS", "DataValidationError", "Problem", "errors_only", "validate_frame"]

MAX_TICKER_CHARS = 32
MAX_ID_CHARS = 256
_MISSING_TEXT = {"", "nan", "NaN", "NA", "N/A", "null", "NULL", "None", "NaT"}
_ZONED = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")
_MONTH_RE = r"^\d{4}-(0[1-9]|1[0-2])$"
_SHOW_ROWS = 5


@dataclass(frozen=True)
class Problem:
    """One validation problem: which file, which rows (1-based data rows), which column."""

    file: str
    column: str | None
    message: str
    rows: tuple[int, ...] = ()
    n_rows: int = 0
    csv: bool = False
    lines: tuple[int, ...] = ()  # file lines, for sources whose lines are not row + 1 (preambles, JSONL)
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = ("warning: " if self.severity == "warning" else "") + self.file
        more = f" and {self.n_rows - len(self.rows or self.lines)} more" if self.n_rows > len(self.rows or self.lines) else ""
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows)
            label = "row" if self.n_rows == 1 else "rows"
            where += f" {label} {shown}{more}"
            if self.csv:
                where += f" (line{'s' if self.n_rows > 1 else ''} {', '.join(str(r + 1) for r in self.rows)})"
        elif self.lines:
            where += f" line{'s' if self.n_rows > 1 else ''} {', '.join(str(n) for n in self.lines)}{more}"
        if self.column:
            where += f", column '{self.column}'"
        return f"{where}: {self.message}"


def errors_only(problems: list[Problem]) -> list[Problem]:
    """The problems that are errors (warnings left out)."""
    return [p for p in problems if p.severity == "error"]


class DataValidationError(KgfinError, ValueError):
    """Raised by loaders when a table has errors; ``problems`` lists all of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        head = f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in input data:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in problems)]))


@dataclass
class _Collector:
    file: str
    csv: bool
    problems: list[Problem] = field(default_factory=list)

    def add(self, column: str | None, message: str, mask: np.ndarray | None = None,
            severity: Literal["error", "warning"] = "error") -> None:
        if mask is None:
            self.problems.append(Problem(self.file, column, message, csv=False, severity=severity))
            return
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return
        rows = tuple(int(i) + 1 for i in idx[:_SHOW_ROWS])
        self.problems.append(Problem(self.file, column, message, rows, int(idx.size), self.csv, severity=severity))


def _is_missing(s: pd.Series, identifier: bool = False) -> np.ndarray:
    """Missing cells: NaN/None, and empty text; for non-identifiers also the usual NA spellings."""
    missing = s.isna().to_numpy()
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        text = s.map(lambda v: v.strip() if isinstance(v, str) else v)
        spellings = {""} if identifier else _MISSING_TEXT
        missing = missing | text.map(lambda v: isinstance(v, str) and v in spellings).to_numpy(dtype=bool)
    return missing


def _not_text(s: pd.Series, missing: np.ndarray) -> np.ndarray:
    """Cells that hold something other than text (a number or a list read from Parquet)."""
    return s.map(lambda v: not isinstance(v, str)).to_numpy(dtype=bool) & ~missing


def _describe(value: object) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def _bad_identifier(value: str, limit: int) -> str | None:
    """Why ``value`` cannot be an identifier, or None."""
    if len(value) > limit:
        return f"longer than {limit} characters"
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Co", "Cn") for ch in value):
        return "invisible or control character"
    return None


def _check_identifiers(name: str, values: pd.Series, limit: int, out: _Collector) -> np.ndarray:
    """Report identifiers that are too long or hold control / invisible characters; mask of bad rows."""
    reasons = values.map(lambda v: _bad_identifier(v, limit) if isinstance(v, str) else
                         next((r for x in v if (r := _bad_identifier(x, limit))), None)
                         if isinstance(v, tuple) else None)
    bad_all = np.zeros(len(values), dtype=bool)
    for reason in ("longer than", "invisible or control character"):
        bad = reasons.map(lambda r, k=reason: isinstance(r, str) and r.startswith(k)).to_numpy(dtype=bool)
        if bad.any():
            example = values[bad].iloc[0]
            shown = example if isinstance(example, str) else next(x for x in example if _bad_identifier(x, limit))
            text = f"{shown[:20]!r}..." if len(shown) > 20 else repr(shown)
            detail = f"longer than {limit} characters" if reason == "longer than" else reason
            out.add(name, f"bad identifier ({detail}), e.g. {text}", bad)
            bad_all |= bad
    return bad_all


def _first_value(s: pd.Series, mask: np.ndarray) -> str:
    return repr(s[mask].iloc[0]) if mask.any() else ""


def _coerce(col: Column, s: pd.Series, out: _Collector, identifier: bool = False) -> tuple[pd.Series, np.ndarray]:
    """Convert ``s`` to the column's kind, reporting values that do not convert.

    ``identifier``: read without NA spellings and check as an identifier (see the module doc).
    Returns the converted values (None/NaN/NaT where missing or unconvertible) and the
    mask of rows already reported, so that they are not reported again as missing.
    """
    missing = _is_missing(s, identifier)
    if col.kind == "str":
        wrong = _not_text(s, missing)
        out.add(col.name, f"wrong type: expected text, got {_describe(s[wrong].iloc[0]) if wrong.any() else ''}", wrong)
        values = s.map(lambda v: v.strip() if isinstance(v, str) else None).astype(object)
        values[missing | wrong] = None
        bad = wrong
        if identifier:
            limit = MAX_TICKER_CHARS if col.ticker else MAX_ID_CHARS
            bad = bad | _check_identifiers(col.name, values, limit, out)
            values[bad] = None
        return values, bad
    if col.kind in ("float", "int"):
        values = pd.to_numeric(s.where(~missing), errors="coerce").astype("float64")
        arr = values.to_numpy()
        bad = np.isnan(arr) & ~missing
        out.add(col.name, f"wrong type: expected a number, got {_first_value(s, bad)}", bad)
        inf = np.isinf(arr)
        out.add(col.name, "non-finite value (inf)", inf)
        bad = bad | inf
        if col.kind == "int":
            frac = np.isfinite(arr) & (np.floor(arr) != arr)
            out.add(col.name, "wrong type: expected an integer", frac)
            bad = bad | frac
        return values, bad
    if col.kind in ("date", "datetime"):
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            zoned = ~missing
            out.add(col.name, f"time zone ({s.dtype.tz}) on the values: store exchange-local time "
                              "without a zone", zoned)
            values = s.dt.tz_localize(None).where(~zoned)
        elif pd.api.types.is_datetime64_any_dtype(s.dtype):
            values = pd.Series(s, copy=True)
            zoned = np.zeros(len(s), dtype=bool)
        else:
            text = s.astype("string").str.strip().where(~missing)
            zoned = text.str.contains(_ZONED).fillna(False).to_numpy(dtype=bool)
            out.add(col.name, f"time zone in the value, e.g. {_first_value(s, zoned)}: give exchange-local "
                              "time without a zone (YYYY-MM-DD HH:MM:SS)", zoned)
            fmt = "%Y-%m-%d" if col.kind == "date" else "ISO8601"
            values = pd.to_datetime(text.where(~zoned), format=fmt, errors="coerce")
        bad = values.isna().to_numpy() & ~missing & ~zoned
        expect = "YYYY-MM-DD" if col.kind == "date" else "an ISO timestamp YYYY-MM-DD HH:MM:SS"
        out.add(col.name, f"wrong type: expected {expect}, got {_first_value(s, bad)}", bad)
        values = values.astype("datetime64[us]")
        return (values.dt.normalize() if col.kind == "date" else values), bad | zoned
    if col.kind == "month":
        text = s.astype("string").str.strip()
        ok = text.str.match(_MONTH_RE).fillna(False).to_numpy(dtype=bool)
        bad = ~ok & ~missing
        out.add(col.name, f"wrong type: expected a month YYYY-MM, got {_first_value(s, bad)}", bad)
        values = text.astype(object)
        values[~ok] = None
        return values, bad
    if col.kind == "tickers":
        def split(v: object) -> tuple[str, ...] | None:
            if isinstance(v, (list, tuple, np.ndarray)):
                return tuple(str(x).strip() for x in v)
            if v is None or (isinstance(v, float) and np.isnan(v)):
                return None
            return tuple(p.strip() for p in str(v).split(";"))

        values = s.map(split)
        bad = values.map(lambda t: t is not None and (len(t) == 0 or "" in t)).to_numpy(dtype=bool) & ~missing
        out.add(col.name, "malformed ticker list (empty element); separate tickers with ';'", bad)
        values[missing] = None
        bad = bad | _check_identifiers(col.name, values, MAX_TICKER_CHARS, out)
        return values, bad
    raise AssertionError(f"unknown column kind {col.kind}")


def validate_frame(
    raw: pd.DataFrame,
    schema: TableSchema,
    file: str,
    universe: Iterable[str] | None = None,
    csv: bool = False,
    plausible: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Check ``raw`` against ``schema``; return the typed table and every problem found.

    ``universe`` is the set of known tickers (from companies); without it ticker
    membership is not checked. ``plausible`` overrides columns' ``plausible_max`` by name
    (values above it are warnings). The returned frame has the schema's columns first
    (typed), then any extra columns.
    """
    out = _Collector(file, csv)
    raw = raw.reset_index(drop=True)
    present = [c for c in schema.columns if c.name in raw.columns]
    for c in schema.columns:
        if c.name not in raw.columns and c.required:
            out.add(c.name, f"missing column (expected columns: {', '.join(schema.names)})")
    typed: dict[str, pd.Series] = {}
    reported: dict[str, np.ndarray] = {}
    for c in present:
        identifier = c.kind == "tickers" or (c.kind == "str" and (c.ticker or c.name in schema.key))
        typed[c.name], reported[c.name] = _coerce(c, raw[c.name], out, identifier)
    extra = [name for name in raw.columns if name not in schema.names]
    for name in extra:
        if schema.extra_columns == "float":
            typed[name], _ = _coerce(Column(name, "float", "", nullable=True), raw[name], out)
        else:
            typed[name] = raw[name]
    frame = pd.DataFrame(typed, index=raw.index)

    for c in present:
        missing = frame[c.name].isna().to_numpy()
        if c.name in schema.key:
            out.add(c.name, "missing value in key column", missing & ~reported[c.name])
        elif not c.nullable:
            out.add(c.name, "missing value (NaN or empty)", missing & ~reported[c.name])
        if c.kind in ("float", "int") and (c.min is not None or c.max is not None):
            v = frame[c.name].to_numpy(dtype=float)
            lo = -np.inf if c.min is None else c.min
            hi = np.inf if c.max is None else c.max
            outside = np.isfinite(v) & ((v < lo) | (v > hi))
            rng = f"[{c.min if c.min is not None else '-inf'}, {c.max if c.max is not None else 'inf'}]"
            out.add(c.name, f"value outside {rng}, e.g. {_first_value(frame[c.name], outside)}", outside)
        limit = (plausible or {}).get(c.name, c.plausible_max)
        if c.kind in ("float", "int") and limit is not None:
            v = frame[c.name].to_numpy(dtype=float)
            high = np.isfinite(v) & (v > limit)
            out.add(c.name, f"implausible value above {limit:g}, e.g. {_first_value(frame[c.name], high)} "
                            "(check the units; the bound is configurable)", high, severity="warning")

    for name in schema.unique_ignoring_case:
        if name not in frame.columns:
            continue
        values = frame[name]
        folded = values.map(lambda v: v.casefold() if isinstance(v, str) else v)
        clash = (folded.duplicated(keep=False) & ~values.duplicated(keep=False) & values.notna()).to_numpy()
        if clash.any():
            example = sorted(values[clash].head(_SHOW_ROWS * 2), key=str.casefold)[:2]
            out.add(name, f"values differ only by case, e.g. {example}: {name} is case-sensitive, but such "
                          "values collide where names are matched ignoring case (model answers)", clash)

    key_cols = [k for k in schema.key if k in frame.columns]
    if key_cols and len(key_cols) == len(schema.key):
        dup = frame.duplicated(subset=key_cols, keep=False).to_numpy()
        dup = dup & ~frame[key_cols].isna().any(axis=1).to_numpy()
        out.add(",".join(key_cols), f"duplicate key ({', '.join(key_cols)})", dup)

    if universe is not None:
        known = set(universe)
        for c in present:
            if c.kind == "tickers":
                unknown = frame[c.name].map(lambda t: t is not None and any(x and x not in known for x in t))
                mask = unknown.to_numpy(dtype=bool)
                example = next((x for t in frame[c.name][mask] for x in t if x and x not in known), "")
                out.add(c.name, f"unknown ticker (not in companies), e.g. {example!r}", mask)
            elif c.ticker:
                vals = frame[c.name]
                mask = (~vals.isin(known) & vals.notna()).to_numpy()
                out.add(c.name, f"unknown ticker (not in companies), e.g. {_first_value(vals, mask)}", mask)

    for rule in schema.row_checks:
        if rule.left not in frame.columns or rule.right not in frame.columns:
            continue
        a, b = frame[rule.left], frame[rule.right]
        both = (a.notna() & b.notna()).to_numpy()
        fails = ~(a <= b).to_numpy(dtype=bool) if rule.op == "<=" else (a == b).to_numpy(dtype=bool)
        out.add(f"{rule.left},{rule.right}", rule.message, both & fails)

    return frame, out.problems

