"""Read one delivery file, whatever its format, as a DuckDB relation of text columns.

The relation has one text column per header, named by the standard's canonical name, with
values trimmed and '' as NULL. A loader turns it into a table in one statement: by default
the table ``raw``, where ``rowid + 1`` is the data row number (1-based, header not counted);
intake's loader builds the typed table straight from it, so a delivery is parsed once and
stored once on its way in (docs/decisions.md, "Intake types a delivery as it parses it").
A Parquet column whose type already fits its column of the standard (a timestamp for a date,
a number for the price: ``ingest.typed.native_fits``) keeps that type; ``ReadResult.native``
names those. CSV and Parquet stream through DuckDB; XLSX is read with calamine in batches.
Errors name the problem and the row, never the content of a row.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import BinaryIO

import duckdb
import pyarrow as pa

from ingest.sealed import SEGMENT, SealedReader, SealedWriter, open_sealed, sealed_url
from ingest.standard import canonical_name
from ingest.typed import native_fits, sql_literal
from ingest.validate import ROW_CAP

_XLSX_BATCH = 50_000


class UnreadableFile(Exception):
    """The file cannot be read as a delivery; the message is safe to show (no values).

    ``rows``: the data rows the problem was found in (row 1 = the first line under the header),
    up to ROW_CAP, and ``count`` how many there are, where the reader can tell (ragged rows).
    """

    def __init__(self, message: str, rows: list[int] | None = None, count: int = 0):
        super().__init__(message)
        self.rows = rows or []
        self.count = count


@dataclass
class ReadResult:
    file_format: str
    rows: int  # data rows, as the loader counted them
    columns: list[str]  # canonical names of the relation's columns
    ignored_columns: list[str] = field(default_factory=list)
    encoding: str | None = None
    delimiter: str | None = None
    native: frozenset[str] = frozenset()  # columns kept in their Parquet type, not text


@dataclass(frozen=True)
class Relation:
    """A delivery as SQL: ``sql`` reads all of it (with ``params`` bound); ``head(columns)``
    some of its columns in its first HEAD_ROWS rows at most (with ``head_params``), for
    samples. Each statement that reads ``sql`` parses the file again, so a loader reads it
    once."""

    sql: str
    params: list
    head_source: str  # the first rows, as the file has them
    head_params: list
    expressions: dict[str, str]  # canonical column -> its value from the file's columns

    def head(self, columns: list[str]) -> str:
        """Only the columns asked for: the sample of three date columns took twice as long
        through all of a file's columns (each is trimmed)."""
        select = ", ".join(f"{self.expressions[c]} as {_quote(c)}" for c in columns)
        return f"(select {select} from {self.head_source})"


HEAD_ROWS = 2_000  # the rows of a CSV's start kept while it is read (its column names, samples)


# (the read so far, the delivery as a relation) -> the number of data rows loaded; it may be
# called again with the same result and a new relation (a Windows-1252 file, transcoded), so
# it creates its tables with ``create or replace``
Loader = Callable[[ReadResult, Relation], int]


def load_raw(conn: duckdb.DuckDBPyConnection) -> Loader:
    """The loader that stores the delivery's text as it is, in the temp table ``raw``."""

    def load(read: ReadResult, relation: Relation) -> int:
        conn.execute(f"create or replace temp table raw as select * from {relation.sql}",
                     relation.params)  # fmt: skip
        return conn.execute("select count(*) from raw").fetchone()[0]

    return load


@dataclass(frozen=True)
class DeliveryFile:
    """A delivery as stored in quarantine: plain, or sealed (encrypted at rest) under ``key``."""

    path: Path
    key: bytes | None = None

    def open(self) -> BinaryIO:
        return open_sealed(self.path, self.key) if self.key else self.path.open("rb")

    @property
    def url(self) -> str:
        """How DuckDB names it (``sealed://`` needs the connection's SealedFileSystem)."""
        return sealed_url(self.path) if self.key else str(self.path)

    def size(self) -> int:
        if not self.key:
            return self.path.stat().st_size
        with SealedReader(str(self.path), self.key) as reader:
            return reader.size


def sniff_format(source: DeliveryFile) -> str:
    """'csv', 'xlsx' or 'parquet' by content, not by name; raise UnreadableFile otherwise."""
    size = source.size()
    if size == 0:
        raise UnreadableFile("the file is empty")
    with source.open() as fh:
        head = fh.read(8192)
        if size >= 8:
            fh.seek(-4, 2)
            tail = fh.read(4)
        else:
            tail = b""
    if head.startswith(b"PAR1") and tail == b"PAR1":
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        try:
            with source.open() as fh, zipfile.ZipFile(fh) as zf:
                names = set(zf.namelist())
        except zipfile.BadZipFile:
            raise UnreadableFile("the file is a damaged zip archive") from None
        if "xl/workbook.xml" in names:
            return "xlsx"
        raise UnreadableFile(
            "the file is a zip archive, not a delivery: unpack it and upload the CSV, XLSX or "
            "Parquet file inside"
        )
    if head.startswith(b"%PDF"):
        raise UnreadableFile("the file is a PDF: export the data as CSV, XLSX or Parquet instead")
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise UnreadableFile("the file is an old Excel (.xls) workbook: save it as .xlsx or CSV")
    if b"\x00" in head:
        raise UnreadableFile("the file is binary, not text: export it as CSV, XLSX or Parquet")
    return "csv"


def _is_utf8(source: DeliveryFile) -> bool:
    """Whether the whole file decodes as UTF-8."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    with source.open() as fh:
        while chunk := fh.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return False
    return True


_LINE = re.compile(r"Line: (\d+)")
_DELIMITERS = (",", ";", "\t", "|")


# Excel's own hint on a CSV's first line ("sep=;"): the delimiter, and the header on line 2
_HEADER_SEARCH = 5  # lines looked at for the header's delimiter (past a title or blank line)
_SEP_LINE = re.compile(r"^sep=([^\"\r\n])[ \t]*$", re.IGNORECASE)


def _detect_delimiter(source: DeliveryFile, encoding: str) -> tuple[str, int]:
    """(the delimiter, the lines before the header): the candidate that splits the header line
    (the first line that holds one; the lines before it are a title or blank) most often; or
    the one Excel's ``sep=`` line names, and that line is skipped.

    The header decides, not DuckDB's sniffer: with one ragged row the sniffer falls back to
    a one-column reading, and the real problem (the ragged row) would go unreported.
    """
    with source.open() as fh:
        raw = fh.read(65536)
        head = raw.decode("utf-8", "replace") if encoding == "utf-8" else decode_windows_1252(raw)
    lines = head.lstrip("\ufeff").splitlines()
    if lines and (hint := _SEP_LINE.match(lines[0])):
        return hint.group(1), 1
    # a title or blank line before the header holds no delimiter: the first line that does
    # is the header, and decides (the lines before it are skipped, as DuckDB's sniffer would)
    for before, line in enumerate(lines[:_HEADER_SEARCH]):
        counts = {d: line.count(d) for d in _DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        if counts[best]:
            return best, before
    return ",", 0


def _ragged_rows(source: DeliveryFile, encoding: str, delimiter: str,
                 skip: int = 0) -> tuple[int, list[int]]:  # fmt: skip
    """(how many, the first ROW_CAP) data rows whose number of fields differs from the
    header's, read with Python's csv module (the same quoting as DuckDB's reader).

    DuckDB names at most one line of a ragged file, and on a small file only that its sniffer
    found no consistent dialect. Only on that error path: the file is read once more, and no
    field is kept. A row is a record, so a quoted line break does not start a new row.
    """
    import csv

    count, rows = 0, []
    with source.open() as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")
        reader = csv.reader(text, delimiter=delimiter, quotechar='"', doublequote=True)
        for _ in range(skip):  # an Excel sep= line, a title or blank line before the header
            next(reader, None)
        try:
            width = len(next(reader))
            for row, record in enumerate(reader, start=1):
                if record and len(record) != width:  # a blank line is no record at all
                    count += 1
                    if len(rows) < ROW_CAP:
                        rows.append(row)
        except (StopIteration, csv.Error):
            pass  # no header, a NUL byte, a field past csv's limit: what was found stands
    return count, rows


def _csv_error(
    exc: Exception, source: DeliveryFile, encoding: str, delimiter: str, skip: int = 0
) -> UnreadableFile:
    """Translate a DuckDB CSV error without repeating the offending line (it may hold
    identifiers). Ragged rows are named by row number (``_ragged_rows``), whatever DuckDB's
    own message was."""
    count, rows = _ragged_rows(source, encoding, delimiter, skip)
    if count:
        return UnreadableFile(
            f"ragged rows: {count} row(s) have a different number of fields than the header "
            f"(row 1 = the first line under the header); check for unquoted delimiters or line "
            "breaks inside fields",
            rows=rows, count=count,
        )  # fmt: skip
    text = str(exc)
    m = _LINE.search(text)
    where = f" at line {m.group(1)}" if m else ""
    if "Maximum line size" in text:
        return UnreadableFile(
            f"a line is too long{where} (over 2 MB in one row): a field holds far more text than "
            "a delivery needs; shorten or leave out that column"
        )
    if "Expected Number of Columns" in text or "columns" in text.lower():
        return UnreadableFile(
            f"ragged rows: a row{where} has a different number of fields than the header; "
            "check for unquoted delimiters or line breaks inside fields"
        )
    if "unicode" in text.lower() or "encod" in text.lower():
        return UnreadableFile(f"bad encoding{where}: save the file as UTF-8 or Windows-1252")
    return UnreadableFile(f"the CSV file cannot be parsed{where}: check delimiter and quoting")


def _header_map(headers: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """[(source header, canonical name)] keeping the first of duplicates; and ignored headers."""
    seen: set[str] = set()
    mapped, dropped = [], []
    for header in headers:
        name = canonical_name(header)
        if not name or name in seen or name.startswith("_"):
            dropped.append(str(header))
            continue
        seen.add(name)
        mapped.append((header, name))
    return mapped, dropped


def _quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _relation(source_sql: str, params: list, headers: list[str], types: dict[str, str] | None = None,
              head: str | None = None) -> tuple[Relation, list[str], list[str], frozenset[str]]:  # fmt: skip
    """The delivery as a relation; (it, its columns, dropped headers, columns kept in their
    type). ``types``: the source's DuckDB type per header (Parquet), or None (text only);
    ``head``: a table of the source's first rows, when there is one (CSV)."""
    mapped, dropped = _header_map(headers)
    native = frozenset(
        dst for src, dst in mapped if types is not None and native_fits(dst, types[src])
    )
    expressions = {
        dst: _quote(src) if dst in native else f"nullif(trim(cast({_quote(src)} as varchar)), '')"
        for src, dst in mapped
    }
    select = ", ".join(f"{e} as {_quote(dst)}" for dst, e in expressions.items())
    # no row-number column: a table made from it stores rows in file order (DuckDB keeps
    # insertion order), so ``rowid + 1`` is the data row number; a window cost a third of a read
    relation = Relation(
        f"(select {select} from {source_sql})", params,
        head or f"(select * from {source_sql} limit {HEAD_ROWS})", [] if head else params,
        expressions,
    )  # fmt: skip
    return relation, [dst for _, dst in mapped], dropped, native


_HEAD_BUFFER = 1 << 20  # bytes DuckDB reads for a CSV's first rows (a 4 MB buffer took 3x as long)
_LONG_HEAD_BUFFER = 4 << 20  # ... when a line there is longer than that (2 MB lines + room)


def _csv_relation(conn: duckdb.DuckDBPyConnection, sql: str, params: list, skip: int = 0):
    """``sql`` is a read_csv call ending in ``)``. DuckDB's sniffer runs once, on the file's
    start (``sniff_csv``, with the same options): the rows it skips (a title or blank line
    before the header) and the column names. Every read after is told them
    (``auto_detect = false``): the sniffer costs ~8 ms a statement even with the dialect given
    (300 CSVs, two statements each: ~4.8 CPU s at 10M), and the head's read and the whole
    file's read would each run it again.

    The first HEAD_ROWS rows are kept in the temp table ``csv_head`` (the caller drops it),
    read with a small buffer: with DuckDB's 32 MB default it decrypted 32 MB of the sealed
    file for them (~0.1 s per large delivery), with 4 MB it took 27 ms a file, with 1 MB 8 ms.
    They are the relation's head. ``skip``: lines known to come before the header (Excel's
    ``sep=`` line), which the sniffer is told."""

    assert sql.startswith("read_csv(") and sql.endswith(")")

    def sniffed(options: str) -> tuple[int, list[str]]:
        [(skipped, columns)] = conn.execute(
            f"select SkipRows, Columns from sniff_csv({sql[len('read_csv(') : -1]}, {options}"
            f"{f', skip = {skip}' if skip else ''})",
            params,
        ).fetchall()
        return int(skipped), [c["name"] for c in columns]

    def start(options: str) -> tuple[str, list[str]]:
        """The file's read, told what the sniffer found; its first rows into csv_head."""
        skipped, headers = sniffed(options)
        typed = ", ".join(f"{sql_literal(h)}: 'VARCHAR'" for h in headers)
        told = f"{sql[:-1]}, auto_detect = false, skip = {skipped}, columns = {{{typed}}})"
        conn.execute(f"create or replace temp table csv_head as select * from "
                     f"{told[:-1]}, {options}) limit {HEAD_ROWS}", params)  # fmt: skip
        return told, headers

    try:
        source, headers = start(f"buffer_size = {_HEAD_BUFFER}, max_line_size = {_HEAD_BUFFER}")
    except duckdb.Error as exc:
        if "Maximum line size" not in str(exc):
            raise
        # DuckDB's own limit of 2 MB a line
        source, headers = start(f"buffer_size = {_LONG_HEAD_BUFFER}")
    return _relation(source, params, headers, head="csv_head")


# errors of the SQL this module writes (a misspelt function, a column bound wrongly), never of a
# member's file: DuckDB reports a file's problems as invalid input. Raised as they are, so a
# defect of ours is not reported to the member as their file's fault (as "ragged rows", say)
_OWN_SQL_ERRORS = (duckdb.BinderException, duckdb.CatalogException, duckdb.ParserException,
                   duckdb.InternalException)  # fmt: skip


class _LoaderFailed(Exception):
    """The loader failed on a file DuckDB reads as text: a defect of ours, not the file's."""

    def __init__(self, error: Exception):
        super().__init__()
        self.error = error


def _checked(conn, result: ReadResult, relation: Relation, load: Loader | None) -> None:
    """Load the relation (``load``, or into ``raw``). When a loader fails, the file is read as
    text alone: if that fails too, its error is the file's (raised from here, a
    ``duckdb.Error`` as before); if not, the loader's error is ours and escapes as it is,
    never as a member's unreadable file."""
    if not result.columns:
        raise UnreadableFile("the file has no header row with column names")
    if load is None:
        result.rows = load_raw(conn)(result, relation)
        return
    try:
        result.rows = load(result, relation)
    except duckdb.Error as exc:
        load_raw(conn)(result, relation)  # raises the file's own error, if it has one
        conn.execute("drop table raw")
        raise _LoaderFailed(exc) from None


def _latin1_for_undefined(error: UnicodeDecodeError) -> tuple[str, int]:
    """The five bytes Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) as Latin-1."""
    return error.object[error.start : error.end].decode("latin-1"), error.end


codecs.register_error("publieksdata-latin1", _latin1_for_undefined)


def decode_windows_1252(data: bytes) -> str:
    """Windows-1252 (what Dutch Excel and Windows tools write when they do not write UTF-8):
    0x80-0x9F are € ‚ ƒ „ … Š Œ Ž ‘ ’ “ ” • – — ˜ ™ š œ ž Ÿ, not Latin-1's control characters,
    so "€ 12,50" is a price and "Šimić" the same name as in a UTF-8 file. The five bytes it
    leaves undefined are read as Latin-1: every byte is one character, so line breaks stay."""
    return data.decode("cp1252", errors="publieksdata-latin1")


@contextlib.contextmanager
def _transcoded(source: DeliveryFile):
    """A UTF-8 copy of a Windows-1252 delivery (``decode_windows_1252``), sealed like its
    source, removed after.

    DuckDB's own Latin-1 decoding is not used: reading through a Python file system (the
    sealed quarantine) it can splice bytes from elsewhere in the file into a line past the
    first 32 MB (DuckDB 2.0; tests/test_sealed.py has the case). Every byte is one character,
    so the copy has the same lines.
    """
    target = source.path.with_name(source.path.name + ".utf8.tmp")
    try:
        with (
            source.open() as src,
            SealedWriter(str(target), source.key) if source.key else target.open("wb") as dst,
        ):
            while chunk := src.read(SEGMENT):
                dst.write(decode_windows_1252(chunk).encode("utf-8"))
        yield DeliveryFile(target, source.key)
    finally:
        target.unlink(missing_ok=True)


def read_delivery(conn: duckdb.DuckDBPyConnection, source: DeliveryFile,
                  load: Loader | None = None) -> ReadResult:  # fmt: skip
    """Read ``source`` and hand it to ``load`` (by default: into the temp table ``raw``);
    raise UnreadableFile with a safe message. A loader's own failure on a file that reads is
    raised as it is (a defect of ours, not the member's)."""
    try:
        return _read(conn, source, load)
    except _LoaderFailed as failed:
        raise failed.error from None
    finally:
        conn.execute("drop table if exists csv_head")


def _read(conn: duckdb.DuckDBPyConnection, source: DeliveryFile, load: Loader | None) -> ReadResult:
    fmt = sniff_format(source)
    url = source.url
    if fmt == "csv":
        delimiter, skip = _detect_delimiter(source, "utf-8")
        sql = (
            "read_csv(?, all_varchar = true, header = true, encoding = 'utf-8', delim = ?, "
            "quote = '\"', escape = '\"', strict_mode = true)"
        )
        # UTF-8 unless DuckDB finds a byte sequence that is not (then Windows-1252/Latin-1):
        # DuckDB checks every byte while parsing, so no separate pass over the file is needed
        result = ReadResult(fmt, 0, [], [], "utf-8", delimiter)
        try:
            relation, result.columns, result.ignored_columns, _ = _csv_relation(
                conn, sql, [url, delimiter], skip
            )
            _checked(conn, result, relation, load)
        except duckdb.Error as exc:
            if isinstance(exc, _OWN_SQL_ERRORS):
                raise
            # any error may come from a Windows-1252 file read as UTF-8 (a parallel scan can
            # stumble over its bytes as a ragged row first): only a file that is valid UTF-8
            # gets the error reported; the check reads the file, on this path only
            if _is_utf8(source):
                raise _csv_error(exc, source, "utf-8", delimiter, skip) from None
            result.encoding = "windows-1252"
            with _transcoded(source) as utf8:
                try:
                    relation, result.columns, result.ignored_columns, _ = _csv_relation(
                        conn, sql, [utf8.url, delimiter], skip
                    )
                    _checked(conn, result, relation, load)
                except duckdb.Error as exc2:
                    if isinstance(exc2, _OWN_SQL_ERRORS):
                        raise
                    raise _csv_error(exc2, utf8, "utf-8", delimiter, skip) from None
    elif fmt == "parquet":
        sql = "read_parquet(?)"
        try:
            described = conn.execute(f"describe select * from {sql}", [url]).fetchall()
        except duckdb.Error:
            raise UnreadableFile(
                "the Parquet file cannot be read (damaged or unsupported)"
            ) from None
        headers = [row[0] for row in described]
        types = {row[0]: row[1] for row in described}
        relation, columns, dropped, native = _relation(sql, [url], headers, types)
        result = ReadResult(fmt, 0, columns, dropped, native=native)
        try:
            _checked(conn, result, relation, load)
        except duckdb.Error:
            raise UnreadableFile(
                "the Parquet file cannot be read (damaged or unsupported)"
            ) from None
    else:
        result = ReadResult(fmt, 0, [])
        try:
            relation, result.columns, result.ignored_columns = _read_xlsx(conn, source)
            _checked(conn, result, relation, load)
        finally:
            conn.execute("drop table if exists xlsx_rows")
    if result.rows == 0:
        raise UnreadableFile("the file has a header but no data rows")
    return result


_GROUPED = re.compile(r"^-?\d{1,3}(\.\d{3})+$")


def _cell_text(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        text = repr(value)
        # a number cell is never grouped in thousands: 8.125 as text would read as 8125 (the
        # Dutch 1.234), so it gets a fourth decimal, which no grouping has
        return text + "0" if _GROUPED.match(text) else text
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    return str(value)


def _read_xlsx(
    conn: duckdb.DuckDBPyConnection, source: DeliveryFile
) -> tuple[Relation, list[str], list[str]]:
    """The first sheet's rows, in the temp table ``xlsx_rows`` (the caller drops it), as a
    relation; its columns; the headers left out."""
    from python_calamine import CalamineWorkbook

    try:
        with source.open() as fh:
            sheet = CalamineWorkbook.from_filelike(fh).get_sheet_by_index(0)
        rows = iter(sheet.iter_rows())
        header = next(rows, None)
    except Exception:  # calamine raises its own error types for damaged workbooks
        raise UnreadableFile("the XLSX workbook cannot be read (damaged or protected)") from None
    if not header or all(h in (None, "") for h in header):
        raise UnreadableFile("the first sheet has no header row with column names")
    headers = [_cell_text(h) or f"_blank_{i}" for i, h in enumerate(header)]
    width = len(headers)
    safe = [f"c{i}" for i in range(width)]
    conn.execute(
        "create or replace temp table xlsx_rows (" + ", ".join(f"{c} varchar" for c in safe) + ")"
    )
    batch: list[list] = []

    def flush() -> None:
        # per column, in one comprehension: most cells are text (the fast path); a per-cell
        # loop with a list per column cost 60% of reading a workbook
        if batch:
            columns = zip(*batch, strict=True)
            tbl = pa.table({
                name: pa.array([(v or None) if type(v) is str else _cell_text(v) for v in col],
                               pa.string())
                for name, col in zip(safe, columns, strict=True)
            })  # fmt: skip
            conn.register("xlsx_batch", tbl)
            conn.execute("insert into xlsx_rows select * from xlsx_batch")
            conn.unregister("xlsx_batch")
            batch.clear()

    for n, row in enumerate(rows, start=2):
        if len(row) != width:
            if len(row) > width and any(_cell_text(v) is not None for v in row[width:]):
                raise UnreadableFile(f"ragged rows: sheet row {n} has cells beyond the header")
            row = (list(row) + [None] * width)[:width]
        batch.append(row)
        if len(batch) >= _XLSX_BATCH:
            flush()
    flush()
    # rows without a value are skipped (in SQL: the order of the rest is kept)
    empty = " and ".join(f"{c} is null" for c in safe)
    conn.execute(f"delete from xlsx_rows where {empty}")
    renamed = [f"{c} as {_quote(h)}" for c, h in zip(safe, headers, strict=True)]
    source = f"(select {', '.join(renamed)} from xlsx_rows)"
    relation, columns, dropped, _ = _relation(source, [], headers)
    return relation, columns, [d for d in dropped if not d.startswith("_blank_")]
