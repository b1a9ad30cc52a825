"""PatentsView bulk files (``g_patent``, ``g_cpc_current``, ``g_assignee_disambiguated``) -> ``patents``.

PatentsView ships tab-separated files with every field in double quotes, often zipped
(``g_patent.tsv.zip``). A patent is public from its grant date (``patent_date``);
assignee organisations become kgfin tickers through a name map CSV, and the technology
classes are CPC subclasses (``H01L``) or main groups (``H01L21``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pandas as pd

from kgfin.data.importers.common import (
    LINE,
    Format,
    ImportReport,
    Problems,
    Source,
    parse_dates,
    read_delimited,
    resolve_universe,
    single_source,
    write_imported,
)
from kgfin.data.validation import DataValidationError, Problem

__all__ = ["import_patentsview", "normalize_name", "patentsview_files"]

FILES = ("g_patent", "g_cpc_current", "g_assignee_disambiguated")

_SUFFIXES = {"INC", "INCORPORATED", "CORP", "CORPORATION", "CO", "COMPANY", "LTD", "LIMITED", "LLC", "PLC",
             "AG", "SA", "NV", "BV", "GMBH", "KK", "LP", "THE"}


def normalize_name(name: str) -> str:
    """An organisation name reduced for matching: upper case, ``&`` as AND, punctuation
    removed, corporate suffixes (Inc., Corp., Ltd., ...) dropped.

    >>> normalize_name("Apple Inc.") == normalize_name("APPLE, INC")
    True
    >>> normalize_name("AT&T Corp.")
    'AT AND T'
    """
    text = re.sub(r"&", " AND ", str(name).upper())
    words = re.sub(r"[^0-9A-Z]+", " ", text).split()
    while len(words) > 1 and words[-1] in _SUFFIXES:
        words.pop()
    if len(words) > 1 and words[0] == "THE":
        words.pop(0)
    return " ".join(words)


def patentsview_files(directory: str | Path) -> tuple[Path, Path, Path]:
    """The g_patent, g_cpc_current and g_assignee_disambiguated files in ``directory`` (``.tsv`` or ``.tsv.zip``)."""
    directory = Path(directory)
    found = []
    for name in FILES:
        candidates = [directory / f"{name}{s}" for s in (".tsv", ".tsv.zip") if (directory / f"{name}{s}").is_file()]
        if not candidates:
            raise DataValidationError([Problem(str(directory / f"{name}.tsv"), None, "not found (nor .tsv.zip)")])
        found.append(candidates[0])
    return found[0], found[1], found[2]


def _read_name_map(path: str | Path) -> tuple[dict[str, str], dict[str, str]]:
    """Name map CSV (organization, ticker[, assignee_id]) -> {normalised name: ticker}, {assignee_id: ticker}."""
    source = Source(Path(path))
    frame = read_delimited(source, ",", required=["ticker"], lower_header=True)
    problems = Problems()
    if "organization" not in frame.columns and "assignee_id" not in frame.columns:
        problems.add(source.label, "organization", "missing column: organization (or assignee_id)", [1])
        problems.raise_if_any()
    ticker = frame["ticker"].str.strip()
    problems.add_mask(source.label, "ticker", "missing value", frame, ticker.eq("").to_numpy())
    by_name: dict[str, str] = {}
    by_id: dict[str, str] = {}
    for key, col, table in (("name", "organization", by_name), ("id", "assignee_id", by_id)):
        if col not in frame.columns:
            continue
        keys = frame[col].map(normalize_name) if key == "name" else frame[col].str.strip()
        pairs = pd.DataFrame({"k": keys, "t": ticker, LINE: frame[LINE]}).loc[keys.ne("")]
        clash = pairs.groupby("k")["t"].transform("nunique") > 1
        if clash.any():
            first = pairs.loc[clash].iloc[0]
            problems.add(source.label, col, f"{first['k']!r} maps to several tickers", pairs.loc[clash, LINE].to_numpy())
        table.update(dict(zip(pairs["k"], pairs["t"], strict=True)))
    problems.raise_if_any()
    return by_name, by_id


def import_patentsview(patent_file: str | Path, cpc_file: str | Path, assignee_file: str | Path,
                       name_map: str | Path, out_dir: str | Path, *,
                       companies: str | Path | pd.DataFrame | None = None,
                       level: Literal["subclass", "group"] = "subclass", fmt: Format = "csv") -> ImportReport:
    """Import PatentsView bulk TSVs (plain or zipped) as ``patents``.

    One row per patent and CPC class (``level``: ``subclass`` like H01L, or main ``group``
    like H01L21), dated by the grant date. The assignee is the first organisation (by
    assignee_sequence) that ``name_map`` maps to a company (by assignee_id where the map
    has one, else by normalised name, :func:`normalize_name`); further mapped co-assignees
    are counted, since a kgfin patent has one assignee. Withdrawn patents, patents with no
    mapped assignee and patents with no CPC class are counted and left out.
    """
    universe = resolve_universe(companies, out_dir)
    by_name, by_id = _read_name_map(name_map)
    problems = Problems()
    psrc, csrc, asrc = single_source(patent_file), single_source(cpc_file), single_source(assignee_file)
    pat = read_delimited(psrc, "\t", ["patent_id", "patent_date"])
    cpc = read_delimited(csrc, "\t", ["patent_id", "cpc_subclass", "cpc_group"])
    asg = read_delimited(asrc, "\t", ["patent_id", "assignee_sequence", "disambig_assignee_organization"])
    pat = pat.assign(patent_id=pat["patent_id"].str.strip(),
                     grant_date=parse_dates(pat, "patent_date", psrc.label, problems, ("%Y-%m-%d",)))
    seq = pd.to_numeric(asg["assignee_sequence"].str.strip(), errors="coerce")
    problems.add_mask(asrc.label, "assignee_sequence", "expected an integer", asg, seq.isna().to_numpy())
    dup = pat["patent_id"].duplicated(keep=False).to_numpy()
    problems.add_mask(psrc.label, "patent_id", "patent listed twice", pat, dup)
    problems.raise_if_any()
    report = ImportReport("patentsview", "patents", [psrc.name, csrc.name, asrc.name, Path(name_map).name],
                          rows_read=len(pat), settings={"level": level})

    if "withdrawn" in pat.columns:
        pat = report.drop_mask("withdrawn patent", psrc.name, pat, pat["withdrawn"].str.strip().isin(["1", "true", "TRUE"]))
    asg = asg.assign(patent_id=asg["patent_id"].str.strip(), seq=seq)
    ids = asg["assignee_id"].str.strip() if "assignee_id" in asg.columns else pd.Series("", index=asg.index)
    by_org = asg["disambig_assignee_organization"].map(lambda s: by_name.get(normalize_name(s)) if s.strip() else None)
    asg = asg.assign(ticker=ids.map(by_id).where(ids.map(by_id).notna(), by_org))
    mapped = asg.loc[asg["ticker"].notna() & asg["patent_id"].isin(pat["patent_id"])]
    mapped = mapped.sort_values(["patent_id", "seq", LINE], kind="mergesort")
    first = mapped.drop_duplicates("patent_id")
    report.drop_mask("co-assignee not kept (a kgfin patent has one assignee)", asrc.name, mapped,
                     mapped.duplicated("patent_id").to_numpy())
    pat = pat.assign(ticker=pat["patent_id"].map(dict(zip(first["patent_id"], first["ticker"], strict=True))))
    pat = report.drop_mask("no assignee organisation in the name map", psrc.name, pat, pat["ticker"].isna())
    pat = report.drop_mask("assignee's ticker not in companies", psrc.name, pat, ~pat["ticker"].isin(universe))

    cls = cpc["cpc_subclass"].str.strip().str.upper() if level == "subclass" else \
        cpc["cpc_group"].str.strip().str.upper().str.split("/").str[0]
    problems.add_mask(csrc.label, "cpc_subclass" if level == "subclass" else "cpc_group", "missing value", cpc,
                      cls.eq("").to_numpy())
    problems.raise_if_any()
    classes = pd.DataFrame({"patent_id": cpc["patent_id"].str.strip(), "cpc_group": cls, LINE: cpc[LINE]})
    classes = classes.loc[classes["patent_id"].isin(pat["patent_id"])]
    n_merged = int(classes.duplicated(["patent_id", "cpc_group"]).sum())
    if n_merged:
        report.notes.append(f"{n_merged} CPC row(s) name a class the patent already has (kept once)")
    classes = classes.drop_duplicates(["patent_id", "cpc_group"])
    pat = report.drop_mask("no CPC classification", psrc.name, pat, ~pat["patent_id"].isin(classes["patent_id"]))
    out = pat[["patent_id", "ticker", "grant_date"]].merge(classes[["patent_id", "cpc_group"]], on="patent_id")
    report.notes.append(f"{len(pat)} patent(s) in {len(out)} (patent, CPC {level}) rows")
    write_imported(out[["patent_id", "ticker", "grant_date", "cpc_group"]], report, out_dir, fmt, universe)
    return report
