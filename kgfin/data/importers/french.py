"""Kenneth French data library CSVs (3- and 5-factor, daily or monthly) -> ``factors_daily`` / ``factors_monthly``.

The files open with a few lines of description, then a header row whose first cell is
empty (``,Mkt-RF,SMB,HML,RF``), then the data block with dates ``YYYYMMDD`` (daily) or
``YYYYMM`` (monthly) and values in percent; monthly files go on with an
"Annual Factors" block (dates ``YYYY``) and end with a copyright line. Missing values
are written -99.99 or -999.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from kgfin.data.importers.common import (
    Format,
    ImportReport,
    Problems,
    read_lines,
    single_source,
    write_imported,
)

__all__ = ["import_french_factors"]

COLUMNS = {"Mkt-RF": "mkt_rf", "SMB": "smb", "HML": "hml", "RMW": "rmw", "CMA": "cma", "RF": "rf"}
REQUIRED = ("Mkt-RF", "SMB", "HML", "RF")
MISSING = (-99.99, -999.0)


def import_french_factors(path: str | Path, out_dir: str | Path, *, fmt: Format = "csv") -> ImportReport:
    """Import one Fama-French factor file (CSV or the library's zip) as ``factors_daily`` or
    ``factors_monthly``, whichever its dates say.

    Percent becomes decimal (2.96 -> 0.0296). Only the first data block is read: the
    annual block of monthly files is ignored (and said so in the report). Rows with a
    missing-value code (-99.99, -999) are counted and left out. Fama and French revise
    their history with each release, so the file's vintage is the one imported.
    """
    source = single_source(path)
    lines = read_lines(source)
    problems = Problems()
    header_at = next((i for i, line in enumerate(lines) if line.split(",")[0].strip() == "" and "Mkt-RF" in line), None)
    if header_at is None:
        problems.add(source.label, None, "no factor header line (a line like ',Mkt-RF,SMB,HML,RF')")
        problems.raise_if_any()
    assert header_at is not None
    header = [h.strip() for h in lines[header_at].split(",")][1:]
    for name in header:
        if name not in COLUMNS:
            problems.add(source.label, name, f"unknown factor column (expected some of {', '.join(COLUMNS)})", [header_at + 1])
    for name in REQUIRED:
        if name not in header:
            problems.add(source.label, name, "missing factor column", [header_at + 1])
    problems.raise_if_any()

    dates: list[str] = []
    values: list[list[float]] = []
    line_no: list[int] = []
    width = None
    end = len(lines)
    for i in range(header_at + 1, len(lines)):
        cells = [c.strip() for c in lines[i].split(",")]
        if not re.fullmatch(r"\d{6}|\d{8}", cells[0]) or (width is not None and len(cells[0]) != width):
            end = i
            break
        width = len(cells[0])
        if len(cells) != len(header) + 1:
            problems.add(source.label, None, f"{len(cells)} fields where the header has {len(header) + 1}", [i + 1])
            continue
        row = []
        for name, cell in zip(header, cells[1:], strict=True):
            try:
                row.append(float(cell))
            except ValueError:
                problems.add(source.label, name, f"expected a number, got {cell!r}", [i + 1])
                row.append(np.nan)
        dates.append(cells[0])
        values.append(row)
        line_no.append(i + 1)
    if not dates:
        problems.add(source.label, None, "no data lines (YYYYMMDD or YYYYMM dates) after the header", [header_at + 1])
    problems.raise_if_any()
    daily = width == 8
    parsed = pd.to_datetime(pd.Series(dates), format="%Y%m%d" if daily else "%Y%m", errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        problems.add(source.label, "date", f"not a valid date: {dates[int(np.flatnonzero(bad)[0])]!r}",
                     np.asarray(line_no)[bad])
    problems.raise_if_any()

    table = "factors_daily" if daily else "factors_monthly"
    report = ImportReport("french", table, [source.name], rows_read=len(dates))
    grid = np.asarray(values, dtype=float)
    missing = np.isin(grid, MISSING).any(axis=1)
    report.drop("missing-value code (-99.99 or -999)", source.name, np.asarray(line_no)[missing])
    annual = sum(bool(re.match(r"\s*\d{4}\s*,", line)) for line in lines[end:])
    if annual:
        report.notes.append(f"ignored the {annual} line(s) of the annual block after line {end}")
    out = pd.DataFrame(np.round(grid[~missing] / 100.0, 10), columns=[COLUMNS[h] for h in header])
    out.insert(0, "date", parsed[~missing].dt.strftime("%Y-%m-%d" if daily else "%Y-%m").to_numpy())
    order = ["date", *[c for c in ("mkt_rf", "smb", "hml", "rmw", "cma", "rf") if c in out.columns]]
    write_imported(out[order], report, out_dir, fmt)
    return report
