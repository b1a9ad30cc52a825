"""News -> ``news``: FNSPID-style CSV (one row per article and stock) and a plain JSONL.

Timestamps become exchange-local and naive, as the ``news`` table wants: ``... UTC`` and
offsets are converted to ``timezone``; naive times are taken as already local; a bare date
(hour unknown) is stamped 16:00, so the item is priced on the next trading day and never
earlier than it could have been read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime, time
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from kgfin.data.importers.common import (
    LINE,
    Format,
    ImportReport,
    Problems,
    Source,
    existing_sources,
    read_delimited,
    read_lines,
    resolve_universe,
    write_imported,
)

__all__ = ["import_news", "local_timestamp"]

DATE_ONLY_TIME = time(16, 0)
_FNSPID_BODY = ("Article", "Lsa_summary", "Luhn_summary", "Textrank_summary", "Lexrank_summary")


def local_timestamp(text: str, tz: ZoneInfo) -> datetime | None:
    """Parse one timestamp (ISO, ``... UTC``, offset, or bare date) to naive exchange-local time; None if unparseable.

    >>> str(local_timestamp("2023-12-16 23:00:00 UTC", ZoneInfo("America/New_York")))
    '2023-12-16 18:00:00'
    >>> str(local_timestamp("2020-06-05", ZoneInfo("America/New_York")))
    '2020-06-05 16:00:00'
    """
    s = text.strip()
    if s.upper().endswith(" UTC"):
        s = s[:-4] + "+00:00"
    elif s.endswith("Z"):
        s = s[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(s)
    except ValueError:
        return None
    if len(s) == 10:
        return datetime.combine(value.date(), DATE_ONLY_TIME)
    if value.tzinfo is not None:
        value = value.astimezone(tz).replace(tzinfo=None)
    return value.replace(microsecond=0)


def _stable_id(prefix: str, *parts: str) -> str:
    return f"{prefix}-" + hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def _read_fnspid(source: Source, problems: Problems) -> pd.DataFrame:
    raw = read_delimited(source, ",", ["Date", "Article_title", "Stock_symbol"])
    body = pd.Series("", index=raw.index, dtype=object)
    for col in _FNSPID_BODY:
        if col in raw.columns:
            body = body.where(body.str.strip().ne(""), raw[col].fillna(""))
    url = raw["Url"].str.strip() if "Url" in raw.columns else pd.Series("", index=raw.index)
    return pd.DataFrame({
        "date": raw["Date"], "tickers": raw["Stock_symbol"].map(lambda s: [s]), "headline": raw["Article_title"],
        "body": body, "id": "", "url": url, LINE: raw[LINE], "_file": source.name, "_label": source.label,
        "_date_column": "Date", "_kind": "fnspid",
    })


def _read_jsonl(source: Source, problems: Problems) -> pd.DataFrame:
    records = []
    for n, line in enumerate(read_lines(source), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.add(source.label, None, f"not valid JSON ({exc.msg} at character {exc.pos + 1})", [n])
            continue
        if not isinstance(item, dict):
            problems.add(source.label, None, "expected a JSON object", [n])
            continue
        for key in ("date", "ticker", "headline"):
            if key not in item or item[key] in (None, "", []):
                problems.add(source.label, key, "missing field", [n])
        tickers = item.get("ticker")
        tickers = [str(t) for t in tickers] if isinstance(tickers, list) else str(tickers or "").replace(",", ";").split(";")
        records.append({
            "date": str(item.get("date", "")), "tickers": tickers, "headline": str(item.get("headline") or ""),
            "body": str(item.get("body") or ""), "id": str(item.get("id") or ""), "url": str(item.get("url") or ""),
            LINE: n, "_file": source.name, "_label": source.label, "_date_column": "date", "_kind": "jsonl",
        })
    return pd.DataFrame.from_records(records, columns=["date", "tickers", "headline", "body", "id", "url", LINE,
                                                       "_file", "_label", "_date_column", "_kind"])


def import_news(paths: Sequence[str | Path], out_dir: str | Path, *, companies: str | Path | pd.DataFrame | None = None,
                timezone: str = "America/New_York", fmt: Format = "csv") -> ImportReport:
    """Import news files as ``news``: ``.csv`` in FNSPID's layout (Date, Article_title,
    Stock_symbol, Url, Publisher, Article, summaries) and ``.jsonl`` lines with date,
    ticker (text or list), headline and optionally body and id.

    An article listed once per stock becomes one item naming all its stocks. Items without
    an id get a stable one hashed from time, headline and URL. The body is the article
    text, else its first non-empty summary, else the headline. Tickers outside
    ``companies`` are removed from an item (counted); an item left with none is dropped.
    """
    tz = ZoneInfo(timezone)
    universe = resolve_universe(companies, out_dir)
    problems = Problems()
    parts = []
    for source in existing_sources(paths, problems):
        suffix = source.path.suffix.lower()
        if suffix in (".jsonl", ".ndjson", ".json"):
            parts.append(_read_jsonl(source, problems))
        elif suffix == ".csv":
            parts.append(_read_fnspid(source, problems))
        else:
            problems.add(source.label, None, "unknown news format (use .csv in FNSPID's layout or .jsonl)")
    problems.raise_if_any()
    items = pd.concat(parts, ignore_index=True)
    stamps = items["date"].map(lambda s: local_timestamp(s, tz))
    bad = stamps.isna().to_numpy()
    for (label, col), part in items.loc[bad].groupby(["_label", "_date_column"], sort=True):
        problems.add(str(label), str(col), f"expected an ISO date or timestamp, got {part['date'].iloc[0]!r}",
                     part[LINE].to_numpy())
    problems.raise_if_any()
    report = ImportReport("news", "news", [Path(p).name for p in paths], rows_read=len(items),
                          settings={"timezone": timezone})

    drop = partial(report.drop_rows, by="_file")

    items = items.assign(timestamp=pd.to_datetime(stamps), headline=items["headline"].str.strip(),
                         tickers=items["tickers"].map(lambda ts: [t.strip().upper() for t in ts if t.strip()]))
    items = drop("empty headline", items, items["headline"].eq(""))
    outside = items["tickers"].map(lambda ts: [t for t in ts if t not in universe])
    n_outside = outside.map(len).to_numpy()
    inside = items["tickers"].map(lambda ts: [t for t in ts if t in universe])
    part_outside = (n_outside > 0) & (inside.map(len).to_numpy() > 0)
    for file, part in items.loc[part_outside].groupby("_file", sort=True):
        report.drop("ticker not in companies (removed from an item that names others)", str(file), part[LINE].to_numpy())
    items = items.assign(tickers=inside)
    items = drop("no ticker in companies", items, items["tickers"].map(len).eq(0))
    stamp_text = items["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    derived = [_stable_id(k, s, h, u) for k, s, h, u in
               zip(items["_kind"], stamp_text, items["headline"], items["url"], strict=True)]
    items = items.assign(id=items["id"].where(items["id"].ne(""), derived))
    conflict = items.groupby("id")["headline"].transform("nunique").gt(1).to_numpy()
    if conflict.any():
        for label, part in items.loc[conflict].groupby("_label", sort=True):
            problems.add(str(label), "id", "one id used for different headlines", part[LINE].to_numpy())
        problems.raise_if_any()
    n_merged = int(items.duplicated("id").sum())
    if n_merged:
        report.notes.append(f"{n_merged} row(s) merged into an item with the same id (one article, several stocks)")
    items = items.sort_values(["id", LINE], kind="mergesort")
    grouped = items.groupby("id", sort=True)
    out = pd.DataFrame({
        "id": list(grouped.groups),
        "timestamp": grouped["timestamp"].min().to_numpy(),
        "tickers": grouped["tickers"].agg(lambda s: ";".join(sorted({t for ts in s for t in ts}))).to_numpy(),
        "headline": grouped["headline"].first().to_numpy(),
        "body": grouped["body"].agg(lambda s: next((b for b in s if b.strip()), "")).to_numpy(),
    })
    out["body"] = out["body"].where(out["body"].str.strip().ne(""), out["headline"])
    write_imported(out, report, out_dir, fmt, universe)
    return report
