"""Importers of public sources (kgfin.data.importers and `kgfin data import`), on small fixtures in
each source's own format (tests/fixtures/public): exact tables, drop reports, errors naming file,
line and column with nothing written, byte-identical re-imports."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kgfin.cli import app
from kgfin.data import DataValidationError, load_market, validate_dir
from kgfin.data.importers import (
    import_13f,
    import_french_factors,
    import_insiders,
    import_news,
    import_patentsview,
    import_prices,
    import_supply_links,
    normalize_name,
    patentsview_files,
)
from kgfin.errors import KgfinError

FIX = Path(__file__).parent / "fixtures" / "public"
runner = CliRunner()


def _data_dir(tmp_path: Path, name: str = "data") -> Path:
    out = tmp_path / name
    out.mkdir()
    shutil.copy(FIX / "companies.csv", out / "companies.csv")
    return out


def _copy(tmp_path: Path, rel: str) -> Path:
    """A writable copy of a fixture file or folder."""
    src, dst = FIX / rel, tmp_path / "src" / rel
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    return dst


def _set_cell(path: Path, line: int, column: str, value: str, sep: str = ",") -> None:
    """Set ``column`` on file line ``line`` (1-based; header is line 1) of a simple delimited file."""
    lines = path.read_text().split("\n")
    header = lines[0].split(sep)
    cells = lines[line - 1].split(sep)
    cells[header.index(column)] = value
    lines[line - 1] = sep.join(cells)
    path.write_text("\n".join(lines))


def _import_all(out: Path, fmt: str = "csv") -> dict[str, object]:
    f = FIX
    return {
        "13f": import_13f([f / "sec13f" / "2024q1"], f / "cusip_map.csv", out, fmt=fmt),
        "insiders": import_insiders([f / "insiders" / "2024q1"], out, fmt=fmt),
        "patents": import_patentsview(*patentsview_files(f / "patentsview"), f / "patentsview" / "name_map.csv", out, fmt=fmt),
        "monthly": import_french_factors(f / "french" / "F-F_Research_Data_Factors.CSV", out, fmt=fmt),
        "daily": import_french_factors(f / "french" / "F-F_Research_Data_5_Factors_2x3_daily.CSV", out, fmt=fmt),
        "news": import_news([f / "news_fnspid.csv", f / "news.jsonl"], out, fmt=fmt),
        "prices": import_prices([f / "prices_long.csv", f / "prices_wide.csv"], out, fmt=fmt),
        "supply": import_supply_links(f / "supply_links.csv", out, until="2024-06", fmt=fmt),
    }


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = _data_dir(tmp_path_factory.mktemp("imported"))
    return out, _import_all(out)


def _no_output(out: Path, table: str) -> None:
    assert not any(out.glob(f"{table}.*")) and not (out / "imports").exists()
    assert sorted(p.name for p in out.iterdir()) == ["companies.csv"]  # no temporary files left either


def test_every_imported_table_validates(imported: tuple[Path, dict[str, object]]) -> None:
    out, _ = imported
    assert validate_dir(out) == []
    market = load_market(out)
    assert set(market.present()) == {"companies", "supply_links", "board_seats", "fund_holdings", "patents", "returns",
                                      "factors_daily", "factors_monthly", "news"}


# --- SEC Form 13F ------------------------------------------------------------------------------

def test_13f_holdings_dated_by_filing(imported: tuple[Path, dict[str, object]]) -> None:
    out, reports = imported
    h = pd.read_csv(out / "fund_holdings.csv", dtype={"fund_id": str})
    w = h.set_index(["month", "fund_id", "ticker"])["weight"]
    # Feb: the original reports (filed 13-14 Feb). The option and the debt row are left out; the
    # unmapped AT&T and the CUSIP that lost its leading zero are not in the table but count in the
    # fund's total value, so weights stay true portfolio shares.
    assert w[("2024-02", "0001067983", "AAPL")] == pytest.approx(0.6)
    assert w[("2024-02", "0001067983", "MSFT")] == pytest.approx(0.3)
    assert ("2024-02", "0001067983", "NVDA") not in w.index  # the restatement was filed in March
    assert w[("2024-02", "0000102909", "MSFT")] == pytest.approx(0.4)  # two discretion lines summed
    # March: the restatement (filed 5 Mar) replaces the original
    assert w[("2024-03", "0001067983", "AAPL")] == pytest.approx(0.5)
    assert w[("2024-03", "0001067983", "NVDA")] == pytest.approx(0.2)
    # April: the new-holdings amendment (filed 10 Apr) adds AMD to the same report
    assert ("2024-03", "0000102909", "AMD") not in w.index
    assert w[("2024-04", "0000102909", "AMD")] == pytest.approx(100 / 1100)
    assert w[("2024-04", "0000102909", "AAPL")] == pytest.approx(400 / 1100)
    # each state stands at most 3 months: the 5 Mar restatement through May, the 10 Apr one through June
    assert sorted(h["month"].unique()) == ["2024-02", "2024-03", "2024-04", "2024-05", "2024-06"]
    assert set(h.loc[h["month"] == "2024-06", "fund_id"]) == {"0000102909"}
    report = reports["13f"]
    assert report.dropped == {
        "put/call option position": 1, "principal amount (debt), not shares": 1,
        "malformed CUSIP (not 9 characters)": 1, "CUSIP not in identifier map at the filing date": 1,
    }
    assert report.rows_read == 14 and report.rows_written == len(h)
    assert report.examples["put/call option position"] == ["2024q1/INFOTABLE.tsv line 4"]


def test_13f_reads_the_secs_zip_and_maps_by_date(tmp_path: Path) -> None:
    archive = tmp_path / "2024q1_form13f.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted((FIX / "sec13f" / "2024q1").iterdir()):
            z.write(p, f"2024q1_form13f/{p.name}")
    out = _data_dir(tmp_path)
    import_13f([archive], FIX / "cusip_map.csv", out)
    ref = _data_dir(tmp_path, "ref")
    import_13f([FIX / "sec13f" / "2024q1"], FIX / "cusip_map.csv", ref)
    assert (out / "fund_holdings.csv").read_bytes() == (ref / "fund_holdings.csv").read_bytes()
    # a mapping that starts after the filings: NVDA's CUSIP is unknown at their filing date
    dated = tmp_path / "dated_map.csv"
    dated.write_text((FIX / "cusip_map.csv").read_text().replace("67066G104,NVDA,86580,,", "67066G104,NVDA,86580,2024-06-01,"))
    again = _data_dir(tmp_path, "dated")
    report = import_13f([FIX / "sec13f" / "2024q1"], dated, again)
    assert report.dropped["CUSIP not in identifier map at the filing date"] == 2
    assert "NVDA" not in set(pd.read_csv(again / "fund_holdings.csv")["ticker"])


def test_13f_malformed_value_names_file_line_column(tmp_path: Path) -> None:
    ds = _copy(tmp_path, "sec13f/2024q1")
    _set_cell(ds / "INFOTABLE.tsv", 7, "VALUE", "5OO", sep="\t")
    out = _data_dir(tmp_path)
    with pytest.raises(DataValidationError) as info:
        import_13f([ds], FIX / "cusip_map.csv", out)
    assert f"{ds / 'INFOTABLE.tsv'} line 7, column 'VALUE': expected a number, got '5OO'" in str(info.value)
    _no_output(out, "fund_holdings")


def test_identifier_map_with_lost_leading_zeros_is_an_error(tmp_path: Path) -> None:
    bad = _copy(tmp_path, "cusip_map.csv")
    _set_cell(bad, 2, "cusip", "37833100")
    out = _data_dir(tmp_path)
    with pytest.raises(DataValidationError, match=r"cusip_map.csv line 2, column 'cusip': expected a CUSIP of 9 "
                                                  r"characters, got '37833100' \(leading zeros lost"):
        import_13f([FIX / "sec13f" / "2024q1"], bad, out)
    _no_output(out, "fund_holdings")


# --- SEC insider data sets -> board seats -------------------------------------------------------

def test_insiders_directors_first_to_last_filing(imported: tuple[Path, dict[str, object]]) -> None:
    out, reports = imported
    seats = pd.read_csv(out / "board_seats.csv", dtype={"director_id": str})
    assert seats.to_dict("records") == [
        {"director_id": "0001111111", "ticker": "AAPL", "start": "2024-01-10", "end": "2024-03-20"},  # the 4/A of April does not extend it
        {"director_id": "0001111111", "ticker": "MSFT", "start": "2024-02-01", "end": "2024-03-15"},  # symbol 'msft' upper-cased
        {"director_id": "0003333333", "ticker": "NVDA", "start": "2024-01-05", "end": "2024-01-05"},  # Director,TenPercentOwner
    ]
    assert reports["insiders"].dropped == {"amendment (restates an earlier filing)": 1,
                                           "owner not flagged as a director": 1, "ticker not in companies": 1}


def test_insiders_issuer_map_and_malformed_date(tmp_path: Path) -> None:
    issuer_map = tmp_path / "issuers.csv"
    issuer_map.write_text("issuer_cik,ticker\n0000320193,AAPL\n789019,MSFT\n")
    out = _data_dir(tmp_path)
    report = import_insiders([FIX / "insiders" / "2024q1"], out, issuer_map=issuer_map)
    assert set(pd.read_csv(out / "board_seats.csv")["ticker"]) == {"AAPL", "MSFT"}
    assert report.dropped["issuer CIK not in issuer map"] == 2  # NVIDIA and Zeta are not in this map

    ds = _copy(tmp_path, "insiders/2024q1")
    _set_cell(ds / "SUBMISSION.tsv", 4, "FILING_DATE", "15-MRZ-2024", sep="\t")
    bad_out = _data_dir(tmp_path, "bad")
    with pytest.raises(DataValidationError) as info:
        import_insiders([ds], bad_out)
    assert f"{ds / 'SUBMISSION.tsv'} line 4, column 'FILING_DATE': expected a date DD-MON-YYYY or YYYY-MM-DD" \
        in str(info.value)
    _no_output(bad_out, "board_seats")


# --- PatentsView ----------------------------------------------------------------------------------

def test_patentsview_subclasses_and_drops(imported: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    out, reports = imported
    p = pd.read_csv(out / "patents.csv", dtype=str)
    assert list(p.itertuples(index=False, name=None)) == [
        ("11000001", "AAPL", "2024-01-02", "G06F"), ("11000001", "AAPL", "2024-01-02", "H04N"),
        ("11000002", "AAPL", "2024-01-09", "G06F"), ("11000003", "MSFT", "2024-01-16", "G06F"),
        ("11000006", "NVDA", "2024-02-06", "G06F"), ("11000006", "NVDA", "2024-02-06", "G06T"),
        ("11000007", "INTC", "2024-02-13", "H01L"),  # 'INTEL CORPORATION' matched 'Intel Corp.'
    ]
    assert reports["patents"].dropped == {
        "withdrawn patent": 1, "no assignee organisation in the name map": 1, "no CPC classification": 1,
        "co-assignee not kept (a kgfin patent has one assignee)": 1,
    }
    groups = _data_dir(tmp_path)
    import_patentsview(*patentsview_files(FIX / "patentsview"), FIX / "patentsview" / "name_map.csv", groups, level="group")
    assert pd.read_csv(groups / "patents.csv")["cpc_group"].tolist()[:2] == ["G06F3", "H04N21"]
    assert normalize_name("Apple Inc.") == normalize_name("APPLE, INC") == "APPLE"


def test_patentsview_malformed_date(tmp_path: Path) -> None:
    src = _copy(tmp_path, "patentsview")
    text = (src / "g_patent.tsv").read_text().replace('"2024-01-16"', '"01/16/2024"')
    (src / "g_patent.tsv").write_text(text)
    out = _data_dir(tmp_path)
    with pytest.raises(DataValidationError) as info:
        import_patentsview(*patentsview_files(src), src / "name_map.csv", out)
    assert f"{src / 'g_patent.tsv'} line 4, column 'patent_date': expected a date YYYY-MM-DD, got '01/16/2024'" \
        in str(info.value)
    _no_output(out, "patents")


# --- Kenneth French ---------------------------------------------------------------------------------

def test_french_monthly_and_daily(imported: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    out, reports = imported
    m = pd.read_csv(out / "factors_monthly.csv")
    assert m["date"].tolist() == ["2023-10", "2023-11", "2023-12", "2024-01", "2024-02", "2024-03"]
    assert m.loc[0, ["mkt_rf", "smb", "hml", "rf"]].tolist() == [-0.0519, -0.0387, 0.0019, 0.0047]
    assert "2022" not in set(m["date"])  # the annual block is ignored
    assert reports["monthly"].dropped == {"missing-value code (-99.99 or -999)": 1}
    assert reports["monthly"].examples["missing-value code (-99.99 or -999)"] == ["F-F_Research_Data_Factors.CSV line 11"]
    d = pd.read_csv(out / "factors_daily.csv")
    assert list(d.columns) == ["date", "mkt_rf", "smb", "hml", "rmw", "cma", "rf"]
    assert d.loc[0].tolist() == ["2024-03-01", 0.0091, 0.0035, -0.0023, -0.0056, -0.002, 0.00021]
    # the library's zip
    archive = tmp_path / "F-F_Research_Data_Factors_CSV.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(FIX / "french" / "F-F_Research_Data_Factors.CSV", "F-F_Research_Data_Factors.CSV")
    zipped = tmp_path / "zipped"
    import_french_factors(archive, zipped)
    assert (zipped / "factors_monthly.csv").read_bytes() == (out / "factors_monthly.csv").read_bytes()


def test_french_malformed_value_names_the_file_line(tmp_path: Path) -> None:
    src = _copy(tmp_path, "french/F-F_Research_Data_Factors.CSV")
    src.write_bytes(src.read_bytes().replace(b"202401,    0.70,   -5.09", b"202401,    0.70,   -5.o9"))
    out = tmp_path / "out"
    with pytest.raises(DataValidationError) as info:
        import_french_factors(src, out)
    assert f"{src} line 8, column 'SMB': expected a number, got '-5.o9'" in str(info.value)
    assert not out.exists()


# --- news ---------------------------------------------------------------------------------------------

def test_news_fnspid_and_jsonl(imported: tuple[Path, dict[str, object]]) -> None:
    out, reports = imported
    news = load_market(out, ["companies", "news"]).news.set_index("headline")
    item = news.loc["Apple and Microsoft settle cloud licensing dispute"]
    assert item["tickers"] == ("AAPL", "MSFT")  # one article listed once per stock -> one item
    assert str(item["timestamp"]) == "2024-03-04 08:30:00"  # 13:30 UTC -> New York
    assert item["body"].startswith("The companies said on Monday\nthey had settled.")  # a quoted multi-line field
    assert str(news.loc["Intel wins foundry customer", "timestamp"]) == "2024-03-06 16:00:00"  # date only
    assert news.loc["Nvidia beats estimates, guides higher", "body"] == "Nvidia reported record data-center revenue."
    assert news.loc["Nvidia added to index", "id"] == "press-42"
    assert news.loc["Apple supplier XYZ cuts forecast", "tickers"] == ("AAPL",)
    assert str(news.loc["AMD ships new accelerator", "timestamp"]) == "2024-03-07 09:45:00"
    assert reports["news"].dropped == {"empty headline": 1, "no ticker in companies": 1,
                                       "ticker not in companies (removed from an item that names others)": 1}


def test_news_malformed_jsonl_and_date(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"date": "2024-03-07", "ticker": "AMD", "headline": "ok"}\n{"date": "2024-03-08", "ticker": "AMD"\n'
                   '{"date": "2024-03-09", "headline": "no ticker"}\n')
    out = _data_dir(tmp_path)
    with pytest.raises(DataValidationError) as info:
        import_news([bad], out)
    text = str(info.value)
    assert f"{bad} line 2: not valid JSON" in text and f"{bad} line 3, column 'ticker': missing field" in text
    src = _copy(tmp_path, "news_fnspid.csv")
    src.write_text(src.read_text().replace("2024-03-05 21:15:00 UTC", "March 5th"))
    with pytest.raises(DataValidationError) as info:
        import_news([src], out)
    assert f"{src} line 6, column 'Date': expected an ISO date or timestamp, got 'March 5th'" in str(info.value)
    _no_output(out, "news")


# --- prices ----------------------------------------------------------------------------------------------

def test_prices_long_and_wide(imported: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    out, reports = imported
    r = pd.read_csv(out / "returns.csv").set_index(["date", "ticker"])["ret"]
    assert r[("2024-03-04", "AAPL")] == pytest.approx(175.10 / 179.66 - 1)
    assert r[("2024-03-04", "NVDA")] == pytest.approx(852.37 / 822.79 - 1)  # wide file, YYYYMMDD dates
    assert ("2024-03-06", "AAPL") not in r.index and ("2024-03-07", "AAPL") not in r.index  # gap on the 6th
    assert r[("2024-03-08", "AAPL")] == pytest.approx(170.73 / 169.00 - 1)
    assert reports["prices"].dropped == {
        "ticker not in companies": 6, "first close of a ticker (no previous close)": 5, "missing close": 1,
        "previous close missing (the return would span two days)": 1,
    }
    rets = tmp_path / "crsp.csv"
    rets.write_text("date,ticker,ret\n20240304,AAPL,-0.0254\n20240305,AAPL,\n20240306,MSFT,0.01\n")
    o = _data_dir(tmp_path)
    report = import_prices([rets], o)
    assert pd.read_csv(o / "returns.csv")["ret"].tolist() == [-0.0254, 0.01] and report.dropped == {"missing return": 1}


def test_prices_malformed(tmp_path: Path) -> None:
    src = _copy(tmp_path, "prices_long.csv")
    _set_cell(src, 9, "adj_close", "n/a?")
    out = _data_dir(tmp_path)
    with pytest.raises(DataValidationError) as info:
        import_prices([src], out)
    assert f"{src} line 9, column 'adj_close': expected a number, got 'n/a?'" in str(info.value)
    dup = tmp_path / "dup.csv"
    dup.write_text("date,ticker,ret\n2024-03-04,AAPL,0.01\n2024-03-04,AAPL,0.02\n")
    with pytest.raises(DataValidationError, match=r"dup.csv lines 2, 3, column 'date,ticker'"):
        import_prices([dup], out)
    _no_output(out, "returns")


# --- supply links ------------------------------------------------------------------------------------------

def test_supply_links_monthly(imported: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    out, reports = imported
    s = pd.read_csv(out / "supply_links.csv", keep_default_na=False)
    intc = s.loc[(s["supplier"] == "INTC")]
    assert intc["month"].tolist() == ["2023-11", "2023-12", "2024-01", "2024-02"]  # ends 2024-02-20
    nvda = s.loc[(s["supplier"] == "NVDA")].set_index("month")
    assert nvda.loc["2024-02", "value_usd"] == 1_000_000 and nvda.loc["2024-03", "value_usd"] == 1_200_000
    assert nvda.loc["2024-06", "source"] == "10-K major customer disclosure;press release"
    assert reports["supply"].dropped == {"supplier and customer are the same company": 1, "ticker not in companies": 1}
    o = _data_dir(tmp_path)
    report = import_supply_links(FIX / "supply_links.csv", o)
    assert report.settings["until"] == "2024-03"  # default: the latest date in the file
    with pytest.raises(KgfinError, match="until must be a month"):
        import_supply_links(FIX / "supply_links.csv", o, until="2024")


def test_supply_links_end_before_start(tmp_path: Path) -> None:
    src = _copy(tmp_path, "supply_links.csv")
    _set_cell(src, 3, "end", "2023-01-31")
    out = _data_dir(tmp_path)
    with pytest.raises(DataValidationError, match=r"supply_links.csv line 3, column 'start,end': end before start"):
        import_supply_links(src, out)
    _no_output(out, "supply_links")


# --- all importers: idempotent, atomic, need a universe ---------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_reimport_is_byte_identical(tmp_path: Path, fmt: str) -> None:
    a, b = _data_dir(tmp_path, "a"), _data_dir(tmp_path, "b")
    _import_all(a, fmt)
    _import_all(b, fmt)
    _import_all(b, fmt)  # and again over its own output
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 1 + 8 + 8  # companies, eight tables, eight reports
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert validate_dir(a) == []


def test_failed_import_leaves_the_existing_table(tmp_path: Path) -> None:
    out = _data_dir(tmp_path)
    import_supply_links(FIX / "supply_links.csv", out)
    before = (out / "supply_links.csv").read_bytes()
    src = _copy(tmp_path, "supply_links.csv")
    _set_cell(src, 2, "start", "2024-02-30")
    with pytest.raises(DataValidationError):
        import_supply_links(src, out)
    assert (out / "supply_links.csv").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["companies.csv", "imports", "supply_links.csv"]


def test_companies_needed_and_format_clash(tmp_path: Path) -> None:
    with pytest.raises(KgfinError, match="no companies table"):
        import_prices([FIX / "prices_long.csv"], tmp_path / "empty")
    out = _data_dir(tmp_path)
    import_prices([FIX / "prices_long.csv"], out, fmt="parquet")
    with pytest.raises(KgfinError, match=r"returns.parquet exists"):
        import_prices([FIX / "prices_long.csv"], out, fmt="csv")
    report = import_prices([FIX / "prices_long.csv"], tmp_path / "elsewhere", companies=FIX / "companies.csv")
    assert report.rows_written == 8 and np.isclose(report.n_dropped, 4)


# --- the command line ------------------------------------------------------------------------------------------

def test_cli_import_prints_the_report(tmp_path: Path) -> None:
    out = _data_dir(tmp_path)
    result = runner.invoke(app, ["data", "import", "13f", str(FIX / "sec13f" / "2024q1"), "--map",
                                 str(FIX / "cusip_map.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "14 rows read -> 29 rows in fund_holdings.csv" in result.output
    assert "dropped 1: put/call option position (first: 2024q1/INFOTABLE.tsv line 4)" in result.output
    result = runner.invoke(app, ["data", "import", "patentsview", str(FIX / "patentsview"), "--name-map",
                                 str(FIX / "patentsview" / "name_map.csv"), "--out", str(out), "--format", "parquet"])
    assert result.exit_code == 0, result.output
    assert (out / "patents.parquet").exists()
    result = runner.invoke(app, ["data", "validate", str(out)])
    assert result.exit_code == 0, result.output


def test_cli_import_bad_input_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    src = _copy(tmp_path, "supply_links.csv")
    _set_cell(src, 4, "value_usd", "lots")
    out = _data_dir(tmp_path)
    result = runner.invoke(app, ["data", "import", "supply-links", str(src), "--out", str(out)])
    assert result.exit_code == 1
    assert "nothing written" in result.output and "line 4, column 'value_usd': expected a number, got 'lots'" in result.output
    _no_output(out, "supply_links")


# --- end to end: fixtures -> import -> validate -> graph -> named Cypher queries ---------------------------------

@pytest.mark.integration
def test_end_to_end_fixtures_to_cypher(imported: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    from kgfin.store import EmbeddedServer, build_into_store, open_store

    out, _ = imported
    assert validate_dir(out) == []
    market = load_market(out)
    graph = tmp_path / "graph"
    try:
        with open_store(graph, env_file=None) as store:
            build_into_store(market, store, ["2024-03"])
            # Jane Doe (CIK 1111111) files as a director of Apple (Jan-Mar) and of Microsoft (Feb-Mar)
            directors = store.run_query("directors_linking", {"x": "AAPL", "y": "MSFT", "month": "2024-03"})
            assert directors["director"].tolist() == ["0001111111"]
            assert store.run_query("directors_linking", {"x": "AAPL", "y": "NVDA", "month": "2024-03"}).empty
            # both funds' 13F filings known by the end of March (one restated on 5 March)
            funds = store.run_query("common_funds", {"x": "AAPL", "y": "MSFT", "month": "2024-03"})
            assert funds["fund"].tolist() == ["0000102909", "0001067983"]
            assert funds["overlap"].tolist() == pytest.approx([0.4, 0.3])
            suppliers = store.run_query("suppliers", {"ticker": "MSFT", "month": "2024-03"})
            assert suppliers["supplier"].tolist() == ["NVDA", "AMD"]
            assert suppliers["share_of_purchases"].tolist() == pytest.approx([0.8, 0.2])
    finally:
        EmbeddedServer(graph).stop()


@pytest.mark.integration
def test_example_imports_the_fixtures_and_answers_queries(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "examples" / "import_public.py"
    run = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "run")], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "validated: companies, supply_links, board_seats, fund_holdings, patents" in run.stdout
    assert "graph 2024-03: 5 companies" in run.stdout
    assert "directors_linking" in run.stdout and "0001111111" in run.stdout


@pytest.mark.parametrize("name", ["kgfin.data.importers.patents", "kgfin.data.importers.news"])
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
