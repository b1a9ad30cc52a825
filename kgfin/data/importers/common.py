"""What every importer shares: source files read with their line numbers, strict parsing whose
errors name file, line and column, the report of dropped rows, and validated atomic writing.

An importer reads everything, collects every problem of the input at once and raises
:class:`~kgfin.data.validation.DataValidationError` before anything is written. Only then
is the kgfin table validated against its schema (tickers against ``companies``), written
to a temporary file in the output directory and renamed into place, so a failed import
never leaves a half-written table. Rows that are read but not imported (options in a 13F
filing, tickers outside the universe, ...) are counted by reason in an :class:`ImportReport`,
which is returned and saved as ``<out_dir>/imports/<table>.json``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
import pandas as pd

from kgfin.data.loaders import SUFFIXES, find_table, load_companies
from kgfin.data.schemas import TABLES
from kgfin.data.tables import write_table
from kgfin.data.validation import DataValidationError, Problem, validate_frame
from kgfin.errors import KgfinError

__all__ = [
    "Format", "ImportReport", "Problems", "Source", "parse_dates", "parse_numbers", "read_delimited",
    "existing_sources", "read_lines", "resolve_universe", "single_source", "source_files", "write_imported",
]

log = logging.getLogger(__name__)

Format = Literal["csv", "parquet"]
LINE = "_line"  # the column that carries each row's first file line
_SHOW = 5


@dataclass(frozen=True)
class Source:
    """One input file: a plain file, or a member of a zip archive (as the SEC and PatentsView ship them)."""

    path: Path
    member: str | None = None
    folder: str = ""  # for a file found in a data-set folder: that folder's name, shown in reports

    @property
    def label(self) -> str:
        """How errors name the file: the path as given (and the archive member)."""
        return f"{self.path}:{self.member}" if self.member else str(self.path)

    @property
    def name(self) -> str:
        """How reports name the file: no directories, so saved reports hold no absolute paths."""
        if self.member:
            return f"{self.path.name}:{self.member}"
        return f"{self.folder}/{self.path.name}" if self.folder else self.path.name

    @contextlib.contextmanager
    def open(self) -> Iterator[TextIO]:
        if self.member is None:
            with open(self.path, encoding="utf-8", errors="replace", newline="") as fh:
                yield fh
            return
        with zipfile.ZipFile(self.path) as archive, archive.open(self.member) as raw:
            yield io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")


def source_files(path: str | Path, names: Sequence[str]) -> dict[str, Source]:
    """Find the files ``names`` (e.g. ``INFOTABLE.tsv``) in a directory or a zip archive.

    Names match case-insensitively and at any depth of the archive; a missing file is an error.
    """
    path = Path(path)
    found: dict[str, Source] = {}
    if path.is_dir():
        listing = {p.name.lower(): p for p in sorted(path.rglob("*")) if p.is_file()}
        for n in names:
            if n.lower() in listing:
                found[n] = Source(listing[n.lower()], folder=path.name)
    elif path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = {Path(m).name.lower(): m for m in sorted(archive.namelist()) if not m.endswith("/")}
        for n in names:
            if n.lower() in members:
                found[n] = Source(path, members[n.lower()])
    elif not path.exists():
        raise DataValidationError([Problem(str(path), None, "not found")])
    else:
        raise DataValidationError([Problem(str(path), None, "expected a directory or a .zip archive")])
    missing = [n for n in names if n not in found]
    if missing:
        raise DataValidationError([Problem(str(path), None, f"no {n} in it (expected {', '.join(names)})")
                                   for n in missing])
    return found


def existing_sources(paths: Sequence[str | Path], problems: Problems) -> list[Source]:
    """The files of ``paths`` that exist; each missing one is a problem naming it (raised with the others)."""
    found = []
    for path in paths:
        source = Source(Path(path))
        if source.path.is_file():
            found.append(source)
        else:
            problems.add(source.label, None, "file not found")
    return found


def single_source(path: str | Path) -> Source:
    """A plain file, or the one data file inside a zip archive (``F-F_Research_Data_Factors_CSV.zip``)."""
    path = Path(path)
    if not path.is_file():
        raise DataValidationError([Problem(str(path), None, "file not found")])
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/")]
        if len(members) != 1:
            raise DataValidationError([Problem(str(path), None, f"expected one file in the archive, found {len(members)}")])
        return Source(path, members[0])
    return Source(path)


class Problems:
    """Collects input problems (file, column, message, lines) and raises them together."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, file: str, column: str | None, message: str, lines: Sequence[int] | np.ndarray = ()) -> None:
        lines = [int(x) for x in lines]
        if not lines:
            self.items.append(Problem(file, column, message))
            return
        self.items.append(Problem(file, column, message, n_rows=len(lines), lines=tuple(lines[:_SHOW])))

    def add_mask(self, file: str, column: str | None, message: str, frame: pd.DataFrame, mask: np.ndarray | pd.Series) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.add(file, column, message, frame[LINE].to_numpy()[mask])

    def raise_if_any(self) -> None:
        if self.items:
            raise DataValidationError(self.items)


def read_lines(source: Source) -> list[str]:
    """All lines of a text file, without line endings."""
    with source.open() as fh:
        return fh.read().splitlines()


def read_delimited(source: Source, delimiter: str = ",", required: Sequence[str] = (), quoting: bool = True,
                   lower_header: bool = False) -> pd.DataFrame:
    """Read a delimited text file as text columns, plus ``_line``: the file line each row starts on.

    Every value stays a string (``037833100`` keeps its leading zero); blank lines are
    skipped. A missing required column, or a line whose field count differs from the
    header's, is an error naming the file and line. ``quoting=False`` reads quote
    characters as text (the SEC's TSVs do not quote, and names contain ``"``).
    """
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # news bodies can be long
    problems = Problems()
    with source.open() as fh:
        reader = csv.reader(fh, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise DataValidationError([Problem(source.label, None, "empty file (no header line)")])
        header = [h.strip().lstrip("\ufeff") for h in header]
        if lower_header:
            header = [h.lower() for h in header]
        dup = sorted({h for h in header if header.count(h) > 1})
        if dup:
            problems.add(source.label, dup[0], "column name appears twice in the header", [1])
        for name in required:
            if name not in header:
                problems.add(source.label, name, f"missing column (the header has: {', '.join(header)})", [1])
        problems.raise_if_any()
        rows: list[list[str]] = []
        lines: list[int] = []
        ragged: dict[int, list[int]] = {}
        previous = reader.line_num
        for record in reader:
            start, previous = previous + 1, reader.line_num
            if not record or all(not x.strip() for x in record):
                continue
            if len(record) != len(header):
                ragged.setdefault(len(record), []).append(start)
                continue
            rows.append(record)
            lines.append(start)
    for n, where in sorted(ragged.items()):
        problems.add(source.label, None, f"{n} fields where the header has {len(header)}", where)
    problems.raise_if_any()
    frame = pd.DataFrame(rows, columns=header, dtype=object) if rows else pd.DataFrame(columns=header, dtype=object)
    frame[LINE] = np.asarray(lines, dtype=np.int64)
    return frame


def parse_numbers(frame: pd.DataFrame, column: str, file: str, problems: Problems,
                  required: bool = True, min_value: float | None = None) -> pd.Series:
    """The column as floats; text that is not a number, or missing where required, is a problem."""
    text = frame[column].astype(str).str.strip()
    empty = text.eq("").to_numpy()
    values = pd.to_numeric(text.where(~empty), errors="coerce").astype("float64")
    arr = values.to_numpy()
    bad = ~empty & ~np.isfinite(arr)
    if bad.any():
        example = text[bad].iloc[0]
        problems.add_mask(file, column, f"expected a number, got {example!r}", frame, bad)
    if required:
        problems.add_mask(file, column, "missing value", frame, empty)
    if min_value is not None:
        low = np.isfinite(arr) & (arr < min_value)
        if low.any():
            problems.add_mask(file, column, f"value below {min_value:g}, e.g. {arr[low][0]:g}", frame, low)
    return values


def parse_dates(frame: pd.DataFrame, column: str, file: str, problems: Problems, formats: Sequence[str],
                required: bool = True) -> pd.Series:
    """The column as dates, trying ``formats`` in order; unparseable text is a problem."""
    text = frame[column].astype(str).str.strip()
    empty = text.eq("").to_numpy()
    out = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us]")
    for fmt in formats:
        todo = out.isna().to_numpy() & ~empty
        if not todo.any():
            break
        out[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    bad = out.isna().to_numpy() & ~empty
    if bad.any():
        shown = " or ".join(f.replace("%Y", "YYYY").replace("%m", "MM").replace("%d", "DD").replace("%b", "MON")
                            for f in formats)
        problems.add_mask(file, column, f"expected a date {shown}, got {text[bad].iloc[0]!r}", frame, bad)
    if required:
        problems.add_mask(file, column, "missing value", frame, empty)
    return out


def resolve_universe(companies: str | Path | pd.DataFrame | None, out_dir: str | Path) -> set[str]:
    """The tickers the imported table may use: from ``companies`` (a table or a file), else
    from the output directory's own companies table, which must then exist."""
    if isinstance(companies, pd.DataFrame):
        return set(companies["ticker"].astype(str))
    if companies is not None:
        return set(load_companies(companies)["ticker"])
    path = find_table(out_dir, "companies")
    if path is None:
        raise KgfinError(f"{out_dir} has no companies table: write companies.csv (ticker, name, sector) there "
                         "first, or pass companies=, so that imported tickers can be checked against the universe")
    return set(load_companies(path)["ticker"])


@dataclass
class ImportReport:
    """What an import read, wrote and left out (rows dropped, by reason)."""

    source: str
    table: str
    inputs: list[str]
    rows_read: int = 0
    rows_written: int = 0
    path: Path | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def drop(self, reason: str, file: str, lines: Sequence[int] | np.ndarray) -> None:
        """Count rows left out for ``reason``, remembering where the first few are."""
        lines = [int(x) for x in lines]
        if not lines:
            return
        self.dropped[reason] = self.dropped.get(reason, 0) + len(lines)
        shown = self.examples.setdefault(reason, [])
        shown.extend(f"{file} line {n}" for n in sorted(lines)[: max(0, _SHOW - len(shown))])

    def drop_rows(self, reason: str, frame: pd.DataFrame, mask: np.ndarray | pd.Series, by: str) -> pd.DataFrame:
        """Count the rows of ``frame`` under ``mask`` as dropped, per input file named in column ``by``; return the
        rows kept."""
        mask = np.asarray(mask, dtype=bool)
        for file, part in frame.loc[mask].groupby(by, sort=True):
            self.drop(reason, str(file), part[LINE].to_numpy())
        return frame.loc[~mask]

    def drop_mask(self, reason: str, file: str, frame: pd.DataFrame, mask: np.ndarray | pd.Series) -> pd.DataFrame:
        """Count the rows of ``frame`` under ``mask`` as dropped; return the rows kept."""
        mask = np.asarray(mask, dtype=bool)
        self.drop(reason, file, frame[LINE].to_numpy()[mask])
        return frame.loc[~mask]

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "table": self.table, "inputs": self.inputs, "settings": self.settings,
            "rows_read": self.rows_read, "rows_written": self.rows_written,
            "dropped": dict(sorted(self.dropped.items())), "examples": dict(sorted(self.examples.items())),
            "notes": self.notes,
        }

    def summary(self) -> str:
        """A few lines for people: what was written, then every drop reason with its count."""
        where = self.path.name if self.path is not None else self.table
        out = [f"{self.source}: {self.rows_read} rows read -> {self.rows_written} rows in {where}"]
        for reason, n in sorted(self.dropped.items(), key=lambda kv: (-kv[1], kv[0])):
            first = self.examples.get(reason, [])
            out.append(f"  dropped {n}: {reason}" + (f" (first: {first[0]})" if first else ""))
        out += [f"  note: {n}" for n in self.notes]
        return "\n".join(out)


def _atomic_write(path: Path, write: Any) -> None:
    """Write through ``write(tmp_dir) -> written_path`` in a temporary directory beside ``path``, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.stem}.") as tmp:
        written = write(Path(tmp))
        os.replace(written, path)


def write_imported(frame: pd.DataFrame, report: ImportReport, out_dir: str | Path, fmt: Format = "csv",
                   universe: set[str] | None = None) -> Path:
    """Validate ``frame`` as ``report.table``, write it (sorted by key) and the report, atomically.

    The same input gives byte-identical files: rows are sorted by the table's key and the
    report holds no times or absolute paths.
    """
    if fmt not in ("csv", "parquet"):
        raise KgfinError(f"unknown table format {fmt!r} (use csv or parquet)")
    out_dir = Path(out_dir)
    schema = TABLES[report.table]
    other = [out_dir / f"{report.table}{s}" for s in SUFFIXES if s != f".{fmt}" and (out_dir / f"{report.table}{s}").exists()]
    if other:
        raise KgfinError(f"{other[0]} exists; remove it or import with format {other[0].suffix[1:]} "
                         "(a data directory holds each table once)")
    frame = frame.sort_values(list(schema.key), kind="mergesort", ignore_index=True)
    typed, problems = validate_frame(frame, schema, f"{report.table} (imported by {report.source})", universe=universe)
    if problems:  # the importers build valid tables; this guards against their bugs
        raise DataValidationError(problems)
    path = out_dir / f"{report.table}.{fmt}"
    _atomic_write(path, lambda tmp: write_table(typed, tmp, report.table, fmt))
    report.path = path
    report.rows_written = len(typed)
    text = json.dumps(report.to_dict(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"

    def write_report(tmp: Path) -> Path:
        (tmp / "r.json").write_text(text, encoding="utf-8")
        return tmp / "r.json"

    _atomic_write(out_dir / "imports" / f"{report.table}.json", write_report)
    log.info("%s", report.summary())
    return path
