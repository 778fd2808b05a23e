"""CSV files that are safe to open in a spreadsheet (no formula injection).

A spreadsheet treats a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some
programs, a tab or carriage return) as a formula. Every *text* cell that starts with one of
those characters is written with a single quote (``'``) in front, which spreadsheets show as
text. So is a cell that reaches such a character only after leading white space or invisible
characters (some programs trim those on import) or that starts with a line feed, and the
full-width forms ``＝ ＋ － ＠`` (which some programs fold to the plain ones). Text that already starts with a quote gets one more, so the rule can be undone without
guessing: strip exactly one leading ``'`` from a text cell that starts with one. Numbers are
written as numbers (a negative number is not a formula) and are never prefixed.

Files are UTF-8 with a byte-order mark (so Excel reads accented names correctly), comma
separated, with a header row; an empty cell is a missing value (NULL).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
from collections.abc import Iterable, Sequence
from pathlib import Path

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
_ALSO_STARTS = ("\n", "＝", "＋", "－", "＠")
# white space and characters that print as nothing, which an import may strip before a formula
_LEADING_BLANKS = " \t\r\n\u00a0\u2007\u202f\u3000\u200b\u200c\u200d\u2060\ufeff\u00ad\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def escape_cell(value: str) -> str:
    """A text cell as written: prefixed with ``'`` when a spreadsheet could run it."""
    if value[:1].isalnum():  # the common case: no formula start, quote or blank can follow
        return value
    if value.startswith(FORMULA_STARTS + _ALSO_STARTS + (QUOTE,)) or value.lstrip(
        _LEADING_BLANKS
    ).startswith(FORMULA_STARTS + _ALSO_STARTS):
        return QUOTE + value
    return value


def unescape_cell(value: str) -> str:
    """The original text of a cell written by :func:`escape_cell`."""
    return value[1:] if value.startswith(QUOTE) else value


def _float_text(value: float) -> str:
    return "" if value != value else repr(value)  # NaN: DuckDB returns NULL, pandas may hand NaN


# by exact type, the common cells without a chain of isinstance tests (a release formats
# millions of cells); bool before int matters only in the chain below, here types are exact
_BY_TYPE = {
    str: escape_cell,
    int: str,
    float: _float_text,
    bool: lambda value: "true" if value else "false",
    decimal.Decimal: str,
    dt.date: dt.date.isoformat,
    dt.datetime: dt.datetime.isoformat,
}


def format_cell(value) -> str:
    if value is None:
        return ""
    by_type = _BY_TYPE.get(type(value))
    if by_type is not None:
        return by_type(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return escape_cell(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, int | decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return escape_cell(str(value))


def _column_text(values: Sequence) -> list[str]:
    """A column's cells as written: one formatter for the column's type where every value has
    it (the common case), the full rule of format_cell per value otherwise."""
    types = {type(v) for v in values} - {type(None)}
    by_type = _BY_TYPE.get(types.pop()) if len(types) == 1 else None
    if by_type is None:
        return [format_cell(v) for v in values]
    return ["" if v is None else by_type(v) for v in values]


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Write a header and rows; return the number of rows written."""
    rows = list(rows)
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow([escape_cell(c) for c in columns])
        if rows:
            writer.writerows(
                zip(*(_column_text(col) for col in zip(*rows, strict=True)), strict=True)
            )
    return len(rows)
