"""SEC EDGAR structured data sets: Form 13F -> ``fund_holdings``, insider Forms 3/4/5 -> ``board_seats``.

Both arrive as quarterly zip archives of tab-separated files (``SUBMISSION.tsv``, ...),
unquoted, with dates written ``14-FEB-2024``. Facts are dated by ``FILING_DATE``, the day
they became public, never by the period they describe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
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
    source_files,
    write_imported,
)

__all__ = ["import_13f", "import_insiders", "read_identifier_map"]

SEC_DATES = ("%d-%b-%Y", "%Y-%m-%d")


def _cik(frame: pd.DataFrame, column: str, file: str, problems: Problems) -> pd.Series:
    """CIKs as 10-digit text (EDGAR writes them with and without leading zeros)."""
    text = frame[column].astype(str).str.strip()
    bad = ~text.str.fullmatch(r"\d{1,10}").to_numpy(dtype=bool)
    if bad.any():
        problems.add_mask(file, column, f"expected a CIK (up to 10 digits), got {text[bad].iloc[0]!r}", frame, bad)
    return text.str.zfill(10)


def _month(dates: pd.Series) -> pd.Series:
    return dates.dt.strftime("%Y-%m")


# --- identifier map ---------------------------------------------------------------------------

def read_identifier_map(path: str | Path, id_column: str = "ticker") -> pd.DataFrame:
    """Read a CUSIP map CSV: ``cusip`` (9 characters) or ``cusip8``, the kgfin identifier in
    ``id_column`` (``ticker``, or ``permno`` where companies are keyed by PERMNO), and
    optionally ``start`` / ``end`` dates bounding when the mapping holds.

    Returns columns cusip8, ident, start, end. CUSIPs are compared on their first 8
    characters (issuer and issue; the check digit is ignored). A CUSIP of the wrong length
    (e.g. ``37833100`` for ``037833100``: leading zero lost in a spreadsheet) and overlapping
    mappings of one CUSIP are errors.
    """
    source = Source(Path(path))
    frame = read_delimited(source, ",", required=[id_column], lower_header=True)
    problems = Problems()
    col = "cusip" if "cusip" in frame.columns else "cusip8" if "cusip8" in frame.columns else None
    if col is None:
        problems.add(source.label, "cusip", "missing column: cusip (9 characters) or cusip8 (8 characters)", [1])
        problems.raise_if_any()
    assert col is not None
    width = 9 if col == "cusip" else 8
    cusip = frame[col].astype(str).str.strip().str.upper()
    bad = ~cusip.str.fullmatch(rf"[0-9A-Z*@#]{{{width}}}").to_numpy(dtype=bool)
    if bad.any():
        hint = " (leading zeros lost? keep the column as text)" if cusip[bad].str.fullmatch(r"\d+").any() else ""
        problems.add_mask(source.label, col, f"expected a CUSIP of {width} characters, got {cusip[bad].iloc[0]!r}{hint}",
                          frame, bad)
    ident = frame[id_column].astype(str).str.strip()
    problems.add_mask(source.label, id_column, "missing value", frame, ident.eq("").to_numpy())
    has_dates = {"start", "end"} & set(frame.columns)
    start = parse_dates(frame, "start", source.label, problems, ("%Y-%m-%d",), required=False) if "start" in has_dates \
        else pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us]")
    end = parse_dates(frame, "end", source.label, problems, ("%Y-%m-%d",), required=False) if "end" in has_dates \
        else pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us]")
    problems.raise_if_any()
    out = pd.DataFrame({"cusip8": cusip.str[:8], "ident": ident, "start": start, "end": end, LINE: frame[LINE]})
    lo = out["start"].fillna(np.datetime64("0001-01-01", "us"))
    hi = out["end"].fillna(np.datetime64("9999-12-31", "us"))
    problems.add_mask(source.label, "start,end", "end before start", out, (lo > hi).to_numpy())
    order = out.assign(lo=lo, hi=hi).sort_values(["cusip8", "lo", LINE], kind="mergesort")
    prev_hi = order.groupby("cusip8")["hi"].shift()
    overlap = (order["lo"] <= prev_hi).to_numpy(dtype=bool)
    problems.add_mask(source.label, col, "CUSIP mapped twice for overlapping dates (add start/end to tell them apart)",
                      order, overlap)
    problems.raise_if_any()
    return out


def _map_cusips(positions: pd.DataFrame, cusip_map: pd.DataFrame) -> pd.Series:
    """The kgfin identifier of each position at its filing date (None where unmapped)."""
    keyed = positions[["cusip8", "filing_date"]].reset_index(drop=True).assign(_pos=np.arange(len(positions)))
    merged = keyed.merge(cusip_map[["cusip8", "ident", "start", "end"]], on="cusip8", how="inner")
    valid = (merged["start"].isna() | (merged["start"] <= merged["filing_date"])) & \
            (merged["end"].isna() | (merged["end"] >= merged["filing_date"]))
    hit = merged.loc[valid].drop_duplicates("_pos")
    out = pd.Series(None, index=positions.index, dtype=object)
    out.loc[positions.index[hit["_pos"].to_numpy()]] = hit["ident"].to_numpy()
    return out


# --- Form 13F -----------------------------------------------------------------------------------

@dataclass
class _Fund:
    """A fund's portfolio as known after its latest filing: the report period and values by ticker."""

    period: pd.Timestamp
    accessions: list[str]
    total: float
    values: dict[str, float] = field(default_factory=dict)


def _read_13f(datasets: Sequence[str | Path], problems: Problems) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """SUBMISSION (+ COVERPAGE amendment type) per filing, and the INFOTABLE rows of every data set."""
    filings, tables, names = [], [], []
    for ds in datasets:
        files = source_files(ds, ["SUBMISSION.tsv", "COVERPAGE.tsv", "INFOTABLE.tsv"])
        sub_src, cover_src, info_src = files["SUBMISSION.tsv"], files["COVERPAGE.tsv"], files["INFOTABLE.tsv"]
        names += [s.name for s in files.values()]
        sub = read_delimited(sub_src, "\t", ["ACCESSION_NUMBER", "FILING_DATE", "SUBMISSIONTYPE", "CIK", "PERIODOFREPORT"],
                             quoting=False)
        cover = read_delimited(cover_src, "\t", ["ACCESSION_NUMBER", "ISAMENDMENT", "AMENDMENTTYPE"], quoting=False)
        info = read_delimited(info_src, "\t", ["ACCESSION_NUMBER", "CUSIP", "VALUE", "SSHPRNAMTTYPE", "PUTCALL"],
                              quoting=False)
        f = pd.DataFrame({
            "accession": sub["ACCESSION_NUMBER"].str.strip(),
            "filing_date": parse_dates(sub, "FILING_DATE", sub_src.label, problems, SEC_DATES),
            "period": parse_dates(sub, "PERIODOFREPORT", sub_src.label, problems, SEC_DATES),
            "type": sub["SUBMISSIONTYPE"].str.strip().str.upper(),
            "cik": _cik(sub, "CIK", sub_src.label, problems),
            "_label": sub_src.label, LINE: sub[LINE],
        })
        amend = pd.DataFrame({
            "accession": cover["ACCESSION_NUMBER"].str.strip(),
            "is_amendment": cover["ISAMENDMENT"].str.strip().str.upper().isin(["Y", "YES", "TRUE", "1"]),
            "amendment_type": cover["AMENDMENTTYPE"].str.strip().str.upper(),
        }).drop_duplicates("accession")
        filings.append(f.merge(amend, on="accession", how="left"))
        tables.append(pd.DataFrame({
            "accession": info["ACCESSION_NUMBER"].str.strip(),
            "cusip": info["CUSIP"].str.strip().str.upper(),
            "value": parse_numbers(info, "VALUE", info_src.label, problems, min_value=0.0),
            "prn": info["SSHPRNAMTTYPE"].str.strip().str.upper().eq("PRN"),
            "option": info["PUTCALL"].str.strip().ne(""),
            "_label": info_src.label, "_name": info_src.name, LINE: info[LINE],
        }))
    filing = pd.concat(filings, ignore_index=True)
    dup = filing.duplicated("accession", keep=False).to_numpy()
    if dup.any():
        first = filing.loc[dup].iloc[0]
        problems.add(first["_label"], "ACCESSION_NUMBER",
                     f"accession {first['accession']} appears more than once (the same data set given twice?)",
                     filing.loc[dup, LINE].to_numpy())
    return filing, pd.concat(tables, ignore_index=True), names


def import_13f(datasets: Sequence[str | Path], identifier_map: str | Path, out_dir: str | Path, *,
               companies: str | Path | pd.DataFrame | None = None, id_column: str = "ticker",
               hold_months: int = 3, fmt: Format = "csv") -> ImportReport:
    """Import SEC Form 13F data sets (directories or the SEC's zip files) as ``fund_holdings``.

    Funds are the filing managers (``fund_id`` = 10-digit CIK). A filing's positions are
    the fund's portfolio from the month of its FILING_DATE (when it became public) for up
    to ``hold_months`` months, until the fund's next filing. Weights are position value
    over the filing's total value of share positions (mapped or not), so they stay true
    portfolio shares. Put/call options and principal-amount (debt) rows are excluded and
    counted; an amendment that restates a report replaces it from its own filing date on,
    one that adds new holdings adds them; a filing for an older period than one already
    filed is superseded. CUSIPs map to kgfin identifiers through ``identifier_map``
    (:func:`read_identifier_map`) at the filing date.
    """
    if hold_months < 1:
        raise ValueError("hold_months must be at least 1")
    universe = resolve_universe(companies, out_dir)
    problems = Problems()
    cusip_map = read_identifier_map(identifier_map, id_column)
    filing, info, names = _read_13f(datasets, problems)
    problems.raise_if_any()
    report = ImportReport("sec-13f", "fund_holdings", [*names, Path(identifier_map).name], rows_read=len(info),
                          settings={"hold_months": hold_months, "id_column": id_column})

    drop = partial(report.drop_rows, by="_name")

    filing = filing.set_index("accession")
    info = drop("accession not in SUBMISSION", info, ~info["accession"].isin(filing.index))
    holdings_report = filing["type"].str.startswith("13F-HR")
    n_notice = int((~holdings_report).sum())
    if n_notice:
        report.notes.append(f"{n_notice} filing(s) of other types (13F-NT notices: holdings reported by another manager) "
                            "carry no positions")
    info = drop("filing is not a 13F-HR holdings report", info, ~holdings_report.reindex(info["accession"]).to_numpy())
    info = drop("put/call option position", info, info["option"])
    info = drop("principal amount (debt), not shares", info, info["prn"])
    total = info.groupby("accession")["value"].sum()
    info = drop("malformed CUSIP (not 9 characters)", info, ~info["cusip"].str.fullmatch(r"[0-9A-Z*@#]{9}"))
    info = info.assign(cusip8=info["cusip"].str[:8], filing_date=filing["filing_date"].reindex(info["accession"]).to_numpy())
    info = info.assign(ticker=_map_cusips(info, cusip_map))
    info = drop("CUSIP not in identifier map at the filing date", info, info["ticker"].isna())
    info = drop("identifier not in companies", info, ~info["ticker"].isin(universe))
    info = drop("filing's share positions total 0", info, (total.reindex(info["accession"]) <= 0).to_numpy())
    merged = int(info.duplicated(["accession", "ticker"]).sum())
    if merged:
        report.notes.append(f"{merged} INFOTABLE row(s) merged into another row of the same filing and company "
                            "(values summed: several share classes or discretion lines)")
    values = info.groupby(["accession", "ticker"], sort=True)["value"].sum()
    by_accession = {a: dict(v.droplevel(0).items()) for a, v in values.groupby(level=0)}

    filing = filing.loc[holdings_report].reset_index()
    amended = filing["is_amendment"].fillna(False).astype(bool) | filing["type"].str.endswith("/A")
    filing["kind"] = np.where(~amended, "report",
                              np.where(filing["amendment_type"].fillna("").str.contains("NEW"), "new_holdings", "restatement"))
    filing = filing.sort_values(["cik", "filing_date", "accession"], kind="mergesort")
    rows: list[tuple[str, str, str, float]] = []
    emitted: set[str] = set()
    stale: set[str] = set()
    for cik, fund_filings in filing.groupby("cik", sort=True):
        state: _Fund | None = None
        by_month: dict[str, _Fund] = {}
        for f in fund_filings.itertuples(index=False):
            acc, period = f.accession, f.period
            own = by_accession.get(acc, {})
            tot = float(total.get(acc, 0.0))
            if f.kind == "new_holdings":
                if state is None or period != state.period:
                    stale.add(acc)
                    continue
                vals = dict(state.values)
                for t, v in own.items():
                    vals[t] = vals.get(t, 0.0) + v
                state = _Fund(period, [*state.accessions, acc], state.total + tot, vals)
            else:
                if state is not None and period < state.period:
                    stale.add(acc)
                    continue
                state = _Fund(period, [acc], tot, dict(own))
            by_month[f.filing_date.strftime("%Y-%m")] = state
        months = sorted(by_month)
        for i, m in enumerate(months):
            st = by_month[m]
            emitted.update(st.accessions)
            stop = pd.Period(months[i + 1], "M") if i + 1 < len(months) else None
            for k in range(hold_months):
                month = pd.Period(m, "M") + k
                if stop is not None and month >= stop:
                    break
                rows += [(str(month), str(cik), t, v / st.total) for t, v in sorted(st.values.items()) if st.total > 0]
    reasons = np.where(info["accession"].isin(stale), "amendment or report for an older period than one already filed",
                       np.where(info["accession"].isin(emitted), "", "superseded within its filing month by a later filing"))
    for reason in sorted(set(reasons) - {""}):
        drop(str(reason), info, reasons == reason)
    report.notes.append(f"each filing's positions stand for the months from its filing month until the fund's next "
                        f"filing, at most {hold_months}")
    out = pd.DataFrame(rows, columns=["month", "fund_id", "ticker", "weight"])
    write_imported(out, report, out_dir, fmt, universe)
    return report


# --- insider Forms 3/4/5 ------------------------------------------------------------------------

def _read_issuer_map(path: str | Path) -> pd.Series:
    source = Source(Path(path))
    frame = read_delimited(source, ",", required=["issuer_cik", "ticker"], lower_header=True)
    problems = Problems()
    cik = _cik(frame, "issuer_cik", source.label, problems)
    problems.add_mask(source.label, "issuer_cik", "issuer CIK listed twice", frame, cik.duplicated(keep=False).to_numpy())
    problems.raise_if_any()
    return pd.Series(frame["ticker"].str.strip().to_numpy(), index=cik.to_numpy())


def import_insiders(datasets: Sequence[str | Path], out_dir: str | Path, *,
                    companies: str | Path | pd.DataFrame | None = None, issuer_map: str | Path | None = None,
                    fmt: Format = "csv") -> ImportReport:
    """Import SEC insider-transaction data sets (Forms 3, 4, 5) as ``board_seats``.

    A seat is a reporting owner flagged ``Director`` in RPTOWNER_RELATIONSHIP for an
    issuer, from the first filing date that says so to the last (``director_id`` = the
    owner's 10-digit CIK). Issuers are identified by ISSUERTRADINGSYMBOL, or through
    ``issuer_map`` (CSV: issuer_cik, ticker) where tickers changed. Amendments (``4/A``)
    restate earlier filings and neither start nor extend a seat; they are counted.
    """
    universe = resolve_universe(companies, out_dir)
    problems = Problems()
    subs, owners, names = [], [], []
    for ds in datasets:
        files = source_files(ds, ["SUBMISSION.tsv", "REPORTINGOWNER.tsv"])
        sub_src, own_src = files["SUBMISSION.tsv"], files["REPORTINGOWNER.tsv"]
        names += [sub_src.name, own_src.name]
        sub = read_delimited(sub_src, "\t", ["ACCESSION_NUMBER", "FILING_DATE", "DOCUMENT_TYPE", "ISSUERCIK",
                                             "ISSUERTRADINGSYMBOL"], quoting=False)
        own = read_delimited(own_src, "\t", ["ACCESSION_NUMBER", "RPTOWNERCIK", "RPTOWNER_RELATIONSHIP"], quoting=False)
        subs.append(pd.DataFrame({
            "accession": sub["ACCESSION_NUMBER"].str.strip(),
            "filing_date": parse_dates(sub, "FILING_DATE", sub_src.label, problems, SEC_DATES),
            "form": sub["DOCUMENT_TYPE"].str.strip().str.upper(),
            "issuer_cik": _cik(sub, "ISSUERCIK", sub_src.label, problems),
            "symbol": sub["ISSUERTRADINGSYMBOL"].str.strip().str.upper(),
            "_label": sub_src.label, LINE: sub[LINE],
        }))
        owners.append(pd.DataFrame({
            "accession": own["ACCESSION_NUMBER"].str.strip(),
            "owner": _cik(own, "RPTOWNERCIK", own_src.label, problems),
            "director": own["RPTOWNER_RELATIONSHIP"].map(
                lambda s: "director" in {p.strip().lower() for p in str(s).split(",")}),
            "_label": own_src.label, "_name": own_src.name, LINE: own[LINE],
        }))
    sub = pd.concat(subs, ignore_index=True)
    dup = sub.duplicated("accession", keep=False).to_numpy()
    if dup.any():
        problems.add(sub.loc[dup, "_label"].iloc[0], "ACCESSION_NUMBER", "accession appears more than once "
                     "(the same data set given twice?)", sub.loc[dup, LINE].to_numpy())
    ticker_of = _read_issuer_map(issuer_map) if issuer_map is not None else None
    problems.raise_if_any()
    own = pd.concat(owners, ignore_index=True)
    report = ImportReport("sec-insiders", "board_seats", [*names, *([Path(issuer_map).name] if issuer_map else [])],
                          rows_read=len(own), settings={"issuer_map": issuer_map is not None})

    drop = partial(report.drop_rows, by="_name")

    own = drop("accession not in SUBMISSION", own, ~own["accession"].isin(sub["accession"]))
    own = own.merge(sub.drop(columns=["_label", LINE]), on="accession", how="left")
    own = drop("amendment (restates an earlier filing)", own, own["form"].str.endswith("/A"))
    own = drop("form type not 3, 4 or 5", own, ~own["form"].isin(["3", "4", "5"]))
    own = drop("owner not flagged as a director", own, ~own["director"])
    if ticker_of is not None:
        own = own.assign(ticker=ticker_of.reindex(own["issuer_cik"]).to_numpy())
        own = drop("issuer CIK not in issuer map", own, own["ticker"].isna())
    else:
        own = own.assign(ticker=own["symbol"])
        own = drop("issuer has no trading symbol", own, own["ticker"].isin(["", "NONE", "N/A"]))
    own = drop("ticker not in companies", own, ~own["ticker"].isin(universe))
    seats = own.groupby(["owner", "ticker"], sort=True)["filing_date"].agg(["min", "max", "size"]).reset_index()
    merged = int((seats["size"] - 1).sum())
    if merged:
        report.notes.append(f"{merged} further director filing(s) extend a seat already started (first to last filing date)")
    out = pd.DataFrame({"director_id": seats["owner"], "ticker": seats["ticker"], "start": seats["min"], "end": seats["max"]})
    write_imported(out, report, out_dir, fmt, universe)
    return report
