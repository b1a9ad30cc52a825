"""Markdown rendering of result tables (no extra dependency)."""

from __future__ import annotations

import math
from numbers import Integral, Real

import pandas as pd

__all__ = ["markdown_table"]


def _cell(value: object, floatfmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        return format(float(value), floatfmt)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".4g", index: bool = False) -> str:
    """A GitHub-flavoured Markdown table of ``frame``; numbers right-aligned, NaN blank.

    >>> print(markdown_table(pd.DataFrame({"model": ["capm"], "coef": [0.12345], "n": [10]})))
    | model | coef | n |
    |:--|--:|--:|
    | capm | 0.1235 | 10 |
    """
    data = frame.reset_index() if index else frame
    header = "| " + " | ".join(str(c) for c in data.columns) + " |"
    align = "|" + "|".join(
        "--:" if pd.api.types.is_numeric_dtype(data[c]) and not pd.api.types.is_bool_dtype(data[c]) else ":--"
        for c in data.columns
    ) + "|"
    rows = ["| " + " | ".join(_cell(v, floatfmt) for v in row) + " |" for row in data.itertuples(index=False)]
    return "\n".join([header, align, *rows])
