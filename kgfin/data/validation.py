"""Validation of input tables: every problem found at once, each naming file, rows and column.

:func:`validate_frame` checks one table against its :class:`~kgfin.data.schemas.TableSchema`
and returns the typed table plus the list of problems. Rows are numbered from 1 for the
first data row; for CSV files the file line is given too (the header is line 1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kgfin.data.schemas import Column, TableSchema
from kgfin.errors import KgfinError

__all__ = ["DataValidationError", "Problem", "validate_frame"]

_MISSING_TEXT = {"", "nan", "NaN", "NA", "N/A", "null", "NULL", "None", "NaT"}
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

    def __str__(self) -> str:
        where = self.file
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


class DataValidationError(KgfinError, ValueError):
    """Raised by loaders when a table has problems; ``problems`` lists all of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        head = f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in input data:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in problems)]))


@dataclass
class _Collector:
    file: str
    csv: bool
    problems: list[Problem] = field(default_factory=list)

    def add(self, column: str | None, message: str, mask: np.ndarray | None = None) -> None:
        if mask is None:
            self.problems.append(Problem(self.file, column, message, csv=False))
            return
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return
        rows = tuple(int(i) + 1 for i in idx[:_SHOW_ROWS])
        self.problems.append(Problem(self.file, column, message, rows, int(idx.size), self.csv))


def _is_missing(s: pd.Series) -> np.ndarray:
    missing = s.isna().to_numpy()
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        text = s.astype("string").str.strip()
        missing = missing | text.isin(_MISSING_TEXT).fillna(True).to_numpy(dtype=bool)
    return missing


def _first_value(s: pd.Series, mask: np.ndarray) -> str:
    return repr(s[mask].iloc[0]) if mask.any() else ""


def _coerce(col: Column, s: pd.Series, out: _Collector) -> tuple[pd.Series, np.ndarray]:
    """Convert ``s`` to the column's kind, reporting values that do not convert.

    Returns the converted values (None/NaN/NaT where missing or unconvertible) and the
    mask of rows already reported, so that they are not reported again as missing.
    """
    missing = _is_missing(s)
    if col.kind == "str":
        values = s.astype("string").str.strip().astype(object)
        values[missing] = None
        return values, np.zeros(len(s), dtype=bool)
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
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            values = pd.Series(s, copy=True)
        else:
            text = s.astype("string").str.strip().where(~missing)
            fmt = "%Y-%m-%d" if col.kind == "date" else "ISO8601"
            values = pd.to_datetime(text, format=fmt, errors="coerce")
        bad = values.isna().to_numpy() & ~missing
        expect = "YYYY-MM-DD" if col.kind == "date" else "an ISO timestamp YYYY-MM-DD HH:MM:SS"
        out.add(col.name, f"wrong type: expected {expect}, got {_first_value(s, bad)}", bad)
        values = values.astype("datetime64[us]")
        return (values.dt.normalize() if col.kind == "date" else values), bad
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
        return values, bad
    raise AssertionError(f"unknown column kind {col.kind}")


def validate_frame(
    raw: pd.DataFrame,
    schema: TableSchema,
    file: str,
    universe: Iterable[str] | None = None,
    csv: bool = False,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Check ``raw`` against ``schema``; return the typed table and every problem found.

    ``universe`` is the set of known tickers (from companies); without it ticker
    membership is not checked. The returned frame has the schema's columns first
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
        typed[c.name], reported[c.name] = _coerce(c, raw[c.name], out)
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

