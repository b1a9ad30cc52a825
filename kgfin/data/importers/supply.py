"""Customer-supplier links -> ``supply_links``, from a generic CSV.

There is no free public feed of supply links; researchers license them (Compustat
customer segments, FactSet Revere, Bloomberg SPLC) or collect the major-customer
disclosures of 10-K filings. Any of these reduces to rows of
``supplier, customer, start, end[, value_usd][, source]``, which this importer expands to
one row per active month. ``start`` should be the day the link became public (the filing
that disclosed it), not the start of the fiscal period it covers.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from kgfin.data.importers.common import (
    LINE,
    Format,
    ImportReport,
    Problems,
    Source,
    parse_dates,
    parse_numbers,
    read_delimited,
    resolve_universe,
    write_imported,
)
from kgfin.errors import KgfinError

__all__ = ["import_supply_links"]


def import_supply_links(path: str | Path, out_dir: str | Path, *, companies: str | Path | pd.DataFrame | None = None,
                        until: str | None = None, fmt: Format = "csv") -> ImportReport:
    """Import a customer-supplier CSV as monthly ``supply_links``.

    Columns: ``supplier``, ``customer``, ``start`` (date the link became known) and
    optionally ``end`` (last day; empty while ongoing), ``value_usd`` (value per month;
    without the column every link is worth 1, i.e. equal weights) and ``source``. A link is
    active in every month from its start month to its end month; open links run to
    ``until`` (YYYY-MM), by default the latest month any date in the file names. Where two
    rows give the same link in a month, the larger value is kept and the sources joined.
    Self-links and unknown tickers are counted and left out; ``end`` before ``start`` is an error.
    """
    source = Source(Path(path))
    universe = resolve_universe(companies, out_dir)
    raw = read_delimited(source, ",", ["supplier", "customer", "start"], lower_header=True)
    problems = Problems()
    label = source.label
    start = parse_dates(raw, "start", label, problems, ("%Y-%m-%d",))
    end = parse_dates(raw, "end", label, problems, ("%Y-%m-%d",), required=False) if "end" in raw.columns \
        else pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us]")
    value = parse_numbers(raw, "value_usd", label, problems, min_value=0.0) if "value_usd" in raw.columns \
        else pd.Series(1.0, index=raw.index)
    links = pd.DataFrame({"supplier": raw["supplier"].str.strip(), "customer": raw["customer"].str.strip(),
                          "start": start, "end": end, "value_usd": value,
                          "source": raw["source"].str.strip() if "source" in raw.columns else "", LINE: raw[LINE]})
    for col in ("supplier", "customer"):
        problems.add_mask(label, col, "missing value", links, links[col].eq("").to_numpy())
    problems.add_mask(label, "start,end", "end before start", links, (links["end"] < links["start"]).to_numpy())
    if until is not None:
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", until):
            raise KgfinError(f"until must be a month YYYY-MM, got {until!r}")
        horizon = pd.Period(until, "M")
    problems.raise_if_any()
    if until is None:
        horizon = pd.concat([links["start"], links["end"]]).max().to_period("M") if len(links) else pd.Period("1970-01", "M")
    report = ImportReport("supply-links", "supply_links", [source.name], rows_read=len(links),
                          settings={"until": str(horizon), "value_usd": "value_usd" in raw.columns})
    if "value_usd" not in raw.columns:
        report.notes.append("no value_usd column: every link is worth 1 (equal weights)")
    links = report.drop_mask("supplier and customer are the same company", source.name, links,
                             links["supplier"].eq(links["customer"]))
    links = report.drop_mask("ticker not in companies", source.name, links,
                             ~(links["supplier"].isin(universe) & links["customer"].isin(universe)))
    first = links["start"].dt.to_period("M")
    last = links["end"].dt.to_period("M").where(links["end"].notna(), horizon)
    late = (first > horizon).to_numpy()
    links = report.drop_mask(f"starts after {horizon}", source.name, links, late)
    first, last = first[~late], last[~late]
    last = last.where(last <= horizon, horizon)
    counts = np.asarray([(b - a).n + 1 for a, b in zip(first, last, strict=True)], dtype=np.int64)
    rep = links.loc[links.index.repeat(counts)].reset_index(drop=True)
    offsets = np.concatenate([np.arange(n) for n in counts]) if len(counts) else np.zeros(0, dtype=np.int64)
    months = [str(a + int(k)) for a, k in zip(np.repeat(first.to_numpy(), counts), offsets, strict=True)]
    rep = rep.assign(month=months)
    n_merged = int(rep.duplicated(["month", "supplier", "customer"]).sum())
    if n_merged:
        report.notes.append(f"{n_merged} link-month(s) given by more than one row (largest value kept, sources joined)")
    out = rep.groupby(["month", "supplier", "customer"], sort=True).agg(
        value_usd=("value_usd", "max"),
        source=("source", lambda s: ";".join(sorted({x for x in s if x}))),
    ).reset_index()
    if "source" not in raw.columns:
        out = out.drop(columns="source")
    report.notes.append(f"{len(links)} link(s) expanded to {len(out)} link-months up to {horizon}")
    write_imported(out, report, out_dir, fmt, universe)
    return report
