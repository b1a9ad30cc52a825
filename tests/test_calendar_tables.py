"""Calendar rules, table round trips and doctests of the small utility modules."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kgfin.config
import kgfin.data.calendar
from kgfin.data.calendar import event_trading_day, months_between
from kgfin.data.tables import TableWriter, read_table


@pytest.mark.parametrize("module", [kgfin.config, kgfin.data.calendar])
def test_doctests(module: object) -> None:
    assert doctest.testmod(module).failed == 0  # type: ignore[arg-type]


def test_news_after_the_close_is_priced_next_trading_day() -> None:
    days = pd.bdate_range("2021-01-01", "2021-01-29")
    ts = pd.to_datetime(["2021-01-04 07:30", "2021-01-04 15:59", "2021-01-04 16:00",
                         "2021-01-08 17:00", "2021-01-09 11:00", "2021-01-29 18:00"])
    got = event_trading_day(ts, days)
    expected = pd.to_datetime(["2021-01-04", "2021-01-04", "2021-01-05", "2021-01-11", "2021-01-11", "NaT"])
    assert got.equals(pd.DatetimeIndex(expected))


def test_months_between() -> None:
    assert months_between("2020-11", "2021-02") == ["2020-11", "2020-12", "2021-01", "2021-02"]
    with pytest.raises(ValueError):
        months_between("2021-02", "2020-11")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_chunked_writer_round_trip(tmp_path: Path, fmt: str) -> None:
    a = pd.DataFrame({"date": pd.to_datetime(["2021-01-04", "2021-01-05"]), "ticker": ["A", "B"], "ret": [0.01, -0.02]})
    b = pd.DataFrame({"date": pd.to_datetime(["2021-01-06"]), "ticker": ["C"], "ret": [np.nan]})
    with TableWriter(tmp_path, "returns", fmt) as w:
        w.write(a)
        w.write(b)
    assert w.rows == 3
    back = read_table(w.path)
    if fmt == "csv":
        back["date"] = pd.to_datetime(back["date"])
    pd.testing.assert_frame_equal(back, pd.concat([a, b], ignore_index=True), check_dtype=False)


def test_chunks_must_share_columns(tmp_path: Path) -> None:
    a = pd.DataFrame({"ticker": ["A"], "ret": [0.01]})
    with TableWriter(tmp_path, "t", "parquet") as w:
        w.write(a)
        with pytest.raises(ValueError, match="differ"):
            w.write(a[["ret", "ticker"]])
