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
    if value.startswith(FORMULA_STARTS + _ALSO_STARTS + (QUOTE,)) or value.lstrip(
        _LEADING_BLANKS
    ).startswith(FORMULA_STARTS + _ALSO_STARTS):
        return QUOTE + value
    return value


def unescape_cell(value: str) -> str:
    """The original text of a cell written by :func:`escape_cell`."""
    return value[1:] if value.startswith(QUOTE) else value


def format_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return escape_cell(value)
    if isinstance(value, float):
        if value != value:  # NaN: DuckDB returns NULL, pandas may hand over NaN
            return ""
        return repr(value)
    if isinstance(value, int | decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return escape_cell(str(value))


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Write a header and rows; return the number of rows written."""
    n = 0
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow([escape_cell(c) for c in columns])
        for row in rows:
            writer.writerow([format_cell(v) for v in row])
            n += 1
    return n
