"""Read one delivery file, whatever its format, into a DuckDB table of text columns.

The table ``raw`` gets one text column per header, named by the standard's canonical
name; ``rowid + 1`` is the data row number (1-based, header not counted). A Parquet column
whose type already fits its column of the standard (a timestamp for a date, a number for the
price: ``ingest.typed.native_fits``) keeps that type; ``ReadResult.native`` names those. CSV and
Parquet stream through DuckDB; XLSX is read with calamine in batches. Errors name the
problem and the row, never the content of a row.
"""

from __future__ import annotations

import contextlib
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import BinaryIO

import duckdb
import pyarrow as pa

from ingest.sealed import SEGMENT, SealedReader, SealedWriter, open_sealed, sealed_url
from ingest.standard import canonical_name
from ingest.typed import native_fits

_XLSX_BATCH = 50_000


class UnreadableFile(Exception):
    """The file cannot be read as a delivery; the message is safe to show (no values)."""


@dataclass
class ReadResult:
    file_format: str
    rows: int
    columns: list[str]  # canonical names in table ``raw`` (data row number: rowid + 1)
    ignored_columns: list[str] = field(default_factory=list)
    encoding: str | None = None
    delimiter: str | None = None
    native: frozenset[str] = frozenset()  # columns of ``raw`` kept in their Parquet type


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


def _detect_delimiter(source: DeliveryFile, encoding: str) -> str:
    """The delimiter is the candidate that splits the header line most often.

    The header decides, not DuckDB's sniffer: with one ragged row the sniffer falls back to
    a one-column reading, and the real problem (the ragged row) would go unreported.
    """
    with source.open() as fh:
        head = fh.read(65536).decode("utf-8" if encoding == "utf-8" else "latin-1", "replace")
    first = head.lstrip("\ufeff").splitlines()[0] if head.strip() else ""
    counts = {d: first.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_error(exc: Exception) -> UnreadableFile:
    """Translate a DuckDB CSV error without repeating the offending line (it may hold identifiers)."""
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


def _create_raw(conn: duckdb.DuckDBPyConnection, source_sql: str, params: list, headers: list[str],
                types: dict[str, str] | None = None) -> tuple[list[str], list[str], frozenset[str]]:  # fmt: skip
    """Create ``raw``; return (its columns, dropped headers, columns kept in their type).

    ``types``: the source's DuckDB type per header (Parquet), or None (text only)."""
    mapped, dropped = _header_map(headers)
    native = frozenset(
        dst for src, dst in mapped if types is not None and native_fits(dst, types[src])
    )
    select = ", ".join(
        f"{_quote(src)} as {_quote(dst)}" if dst in native
        else f"nullif(trim(cast({_quote(src)} as varchar)), '') as {_quote(dst)}"
        for src, dst in mapped
    )  # fmt: skip
    conn.execute(
        # no row-number column: rows are stored in file order (DuckDB keeps insertion order),
        # so ``rowid + 1`` is the data row number; a window for it cost a third of the read
        f"create or replace temp table raw as select {select} from {source_sql}",
        params,
    )
    return [dst for _, dst in mapped], dropped, native


_HEADER_BUFFER = 4 << 20  # bytes DuckDB reads to name the columns (2 MB lines + room)


def _read_csv(conn: duckdb.DuckDBPyConnection, sql: str, params: list):
    """``sql`` is a read_csv call ending in ``)``; the column names come from a first query
    with a small buffer (with DuckDB's 32 MB default it decrypted 32 MB of the sealed file
    just to read the header: ~0.1 s per large delivery)."""
    header_sql = f"{sql[:-1]}, buffer_size = {_HEADER_BUFFER})"
    headers = [
        d[0] for d in conn.execute(f"select * from {header_sql} limit 0", params).description
    ]
    return _create_raw(conn, sql, params, headers)


@contextlib.contextmanager
def _transcoded(source: DeliveryFile):
    """A UTF-8 copy of a Windows-1252/Latin-1 delivery, sealed like its source, removed after.

    DuckDB's own Latin-1 decoding is not used: reading through a Python file system (the
    sealed quarantine) it can splice bytes from elsewhere in the file into a line past the
    first 32 MB (DuckDB 2.0; tests/test_sealed.py has the case). Latin-1 maps every byte, so the
    copy has the same lines.
    """
    target = source.path.with_name(source.path.name + ".utf8.tmp")
    try:
        with (
            source.open() as src,
            SealedWriter(str(target), source.key) if source.key else target.open("wb") as dst,
        ):
            while chunk := src.read(SEGMENT):
                dst.write(chunk.decode("latin-1").encode("utf-8"))
        yield DeliveryFile(target, source.key)
    finally:
        target.unlink(missing_ok=True)


def read_delivery(conn: duckdb.DuckDBPyConnection, source: DeliveryFile) -> ReadResult:
    """Load ``source`` into temp table ``raw``; raise UnreadableFile with a safe message."""
    fmt = sniff_format(source)
    url = source.url
    if fmt == "csv":
        delimiter = _detect_delimiter(source, "utf-8")
        sql = (
            "read_csv(?, all_varchar = true, header = true, encoding = 'utf-8', delim = ?, "
            "quote = '\"', escape = '\"', strict_mode = true)"
        )
        # UTF-8 unless DuckDB finds a byte sequence that is not (then Windows-1252/Latin-1):
        # DuckDB checks every byte while parsing, so no separate pass over the file is needed
        try:
            columns, dropped, _ = _read_csv(conn, sql, [url, delimiter])
            encoding = "utf-8"
        except duckdb.Error as exc:
            # any error may come from a Windows-1252 file read as UTF-8 (a parallel scan can
            # stumble over its bytes as a ragged row first): only a file that is valid UTF-8
            # gets the error reported; the check reads the file, on this path only
            if _is_utf8(source):
                raise _csv_error(exc) from None
            encoding = "latin-1"
            with _transcoded(source) as utf8:
                try:
                    columns, dropped, _ = _read_csv(conn, sql, [utf8.url, delimiter])
                except duckdb.Error as exc2:
                    raise _csv_error(exc2) from None
        result = ReadResult(fmt, 0, columns, dropped, encoding, delimiter)
    elif fmt == "parquet":
        sql = "read_parquet(?)"
        try:
            described = conn.execute(f"describe select * from {sql}", [url]).fetchall()
            headers = [row[0] for row in described]
            types = {row[0]: row[1] for row in described}
            columns, dropped, native = _create_raw(conn, sql, [url], headers, types)
        except duckdb.Error:
            raise UnreadableFile(
                "the Parquet file cannot be read (damaged or unsupported)"
            ) from None
        result = ReadResult(fmt, 0, columns, dropped, native=native)
    else:
        columns, dropped = _read_xlsx(conn, source)
        result = ReadResult(fmt, 0, columns, dropped)
    result.rows = conn.execute("select count(*) from raw").fetchone()[0]
    if not result.columns:
        raise UnreadableFile("the file has no header row with column names")
    if result.rows == 0:
        raise UnreadableFile("the file has a header but no data rows")
    return result


def _cell_text(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    return str(value)


def _read_xlsx(
    conn: duckdb.DuckDBPyConnection, source: DeliveryFile
) -> tuple[list[str], list[str]]:
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
    columns, dropped, _ = _create_raw(conn, source, [], headers)
    conn.execute("drop table xlsx_rows")
    return columns, [d for d in dropped if not d.startswith("_blank_")]
