"""Writing tables in chunks, as Parquet or CSV, in the formats the loaders read back.

:class:`TableWriter` appends chunks (one Parquet row group or one CSV block each), so
large outputs never sit in memory whole. Dates are stored as ``date32`` / ``YYYY-MM-DD``,
timestamps as seconds / ``YYYY-MM-DD HH:MM:SS``, ticker tuples as ``;``-joined text.
The bytes depend only on the data (and the pyarrow version), so identical inputs give
identical files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kgfin.data.schemas import TABLES

__all__ = ["TableWriter", "read_table", "write_table"]

Format = Literal["parquet", "csv"]
_DATE_NAMES = {"date", "start", "end", "grant_date", "event_date"}


def _kinds(table: str | None, frame: pd.DataFrame) -> dict[str, str]:
    kinds: dict[str, str] = {}
    schema = TABLES.get(table) if table else None
    for name in frame.columns:
        col = next((c for c in schema.columns if c.name == name), None) if schema else None
        if col is not None:
            kinds[name] = col.kind
        elif pd.api.types.is_datetime64_any_dtype(frame[name].dtype):
            kinds[name] = "date" if name in _DATE_NAMES else "datetime"
    return kinds


def _prepare(frame: pd.DataFrame, kinds: dict[str, str], fmt: Format) -> pd.DataFrame:
    out = frame.copy()
    for name, kind in kinds.items():
        col = out[name]
        if kind == "tickers":
            out[name] = col.map(lambda t: t if isinstance(t, str) else ";".join(t))
        elif kind in ("date", "datetime") and fmt == "csv":
            fmt_str = "%Y-%m-%d" if kind == "date" else "%Y-%m-%d %H:%M:%S"
            out[name] = pd.to_datetime(col).dt.strftime(fmt_str).fillna("")
    return out


def _arrow_schema(frame: pd.DataFrame, kinds: dict[str, str]) -> pa.Schema:
    fields = []
    for name in frame.columns:
        kind = kinds.get(name)
        dtype = frame[name].dtype
        if kind == "date":
            t = pa.date32()
        elif kind == "datetime":
            t = pa.timestamp("s")
        elif kind in ("str", "month", "tickers") or pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            t = pa.string()
        elif pd.api.types.is_bool_dtype(dtype):
            t = pa.bool_()
        elif pd.api.types.is_integer_dtype(dtype):
            t = pa.int64()
        else:
            t = pa.float64()
        fields.append(pa.field(name, t))
    return pa.schema(fields)


class TableWriter:
    """Append chunks of one table to ``<directory>/<name>.<fmt>``."""

    def __init__(self, directory: str | Path, name: str, fmt: Format = "parquet", table: str | None = None):
        self.path = Path(directory) / f"{name}.{fmt}"
        self.fmt = fmt
        self.table = table if table is not None else (name if name in TABLES else None)
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._kinds: dict[str, str] | None = None
        self._columns: list[str] | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if self._columns is None:
            self._columns = list(frame.columns)
            self._kinds = _kinds(self.table, frame)
        elif list(frame.columns) != self._columns:
            raise ValueError(f"{self.path.name}: chunk columns {list(frame.columns)} differ from {self._columns}")
        assert self._kinds is not None
        prepared = _prepare(frame, self._kinds, self.fmt)
        if self.fmt == "csv":
            prepared.to_csv(self.path, mode="a" if self.rows else "w", header=not self.rows, index=False)
        else:
            if self._schema is None:
                self._schema = _arrow_schema(frame, self._kinds)
                self._writer = pq.ParquetWriter(self.path, self._schema, compression="zstd")
            arrays = []
            for f in self._schema:
                col = prepared[f.name]
                if pa.types.is_date32(f.type):
                    values = pd.to_datetime(col).to_numpy(dtype="datetime64[D]")
                    arrays.append(pa.array(values, type=f.type, mask=np.isnat(values)))
                elif pa.types.is_timestamp(f.type):
                    arrays.append(pa.array(pd.to_datetime(col).to_numpy(dtype="datetime64[s]"), type=f.type))
                elif pa.types.is_string(f.type):
                    arrays.append(pa.array(col.astype(object).where(col.notna(), None).tolist(), type=f.type))
                else:
                    arrays.append(pa.array(col.to_numpy(), type=f.type))
            assert self._writer is not None
            self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))
        self.rows += len(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_table(frame: pd.DataFrame, directory: str | Path, name: str, fmt: Format = "parquet") -> Path:
    """Write a whole table at once; return its path."""
    with TableWriter(directory, name, fmt) as w:
        w.write(frame)
    return w.path


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by :class:`TableWriter` (Parquet or CSV) without validation.

    Parquet dates come back as ``datetime64``; CSV columns are left as pandas parses them,
    except that only an empty cell is missing (as written): a ticker ``NA`` stays ``NA``.
    Use the loaders in :mod:`kgfin.data.loaders` for validated input tables.
    """
    path = Path(path)
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pandas(date_as_object=False)
    if path.suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    raise ValueError(f"{path}: unsupported file type (use .parquet or .csv)")
