"""Search every file a job wrote for identifier values (used by the end-to-end tests).

DuckDB and Parquet files compress strings, so they are searched through DuckDB, column by
column; SQLite files (Dagster's run and event storage) through sqlite3 as well as byte by
byte (a value can straddle two overflow pages); gzip files after decompression; every other
file as bytes.
"""

from __future__ import annotations

import gzip
import re
import sqlite3
from pathlib import Path

import duckdb

SQLITE_MAGIC = b"SQLite format 3\x00"


def _pattern(needles: list[str]) -> str:
    return "|".join(re.escape(n.lower()) for n in needles)


def _scan_relation(conn, relation: str, pattern: str) -> int:
    cols = [
        r[0]
        for r in conn.execute(
            f"select column_name, column_type from (describe select * from {relation})"
        ).fetchall()
        if r[1] == "VARCHAR"
    ]
    if not cols:
        return 0
    text = "concat_ws('|', " + ", ".join(f'"{c}"' for c in cols) + ")"
    return conn.execute(
        f"select count(*) from {relation} where regexp_matches(lower({text}), ?)", [pattern]
    ).fetchone()[0]


def _scan_duckdb(path: Path, pattern: str) -> list[str]:
    hits = []
    conn = duckdb.connect(":memory:")
    try:
        conn.execute("attach ? as db (read_only)", [str(path)])
        tables = conn.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'db'"
        ).fetchall()
        views = conn.execute(
            "select schema_name, view_name from duckdb_views() where database_name = 'db' "
            "and not internal"
        ).fetchall()
        for schema, table in tables + views:
            if _scan_relation(conn, f'db."{schema}"."{table}"', pattern):
                hits.append(f"{schema}.{table}")
    finally:
        conn.close()
    return hits


def _scan_sqlite(path: Path, raw_needles: list[bytes]) -> bool:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for row in conn.execute(f'select * from "{table}"'):
                for value in row:
                    if isinstance(value, str):
                        value = value.encode()
                    if isinstance(value, bytes) and any(n in value.lower() for n in raw_needles):
                        return True
    finally:
        conn.close()
    return False


def find_identifiers(
    root: Path,
    needles: list[str],
    skip: tuple[str, ...] = (),
    scanned: list[str] | None = None,
) -> list[str]:
    """Files (and tables) under ``root`` that contain any needle, case-insensitively.

    ``scanned``, when given, receives the relative path of every file that was searched, so a
    test can show that the scan reached the places it means to cover.
    """
    pattern = _pattern(needles)
    raw_needles = [n.lower().encode() for n in needles]
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = str(path.relative_to(root))
        if any(rel.startswith(s) for s in skip):
            continue
        if scanned is not None:
            scanned.append(rel)
        with path.open("rb") as fh:
            head = fh.read(16)
        if path.suffix == ".duckdb":
            hits += [f"{rel}:{t}" for t in _scan_duckdb(path, pattern)]
        elif path.suffix == ".parquet":
            conn = duckdb.connect(":memory:")
            if _scan_relation(conn, f"read_parquet('{path}')", pattern):
                hits.append(rel)
            conn.close()
        else:
            data = path.read_bytes()
            if head[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            data = data.lower()
            found = any(n in data for n in raw_needles)
            if not found and head == SQLITE_MAGIC:
                found = _scan_sqlite(path, raw_needles)
            if found:
                hits.append(rel)
    return hits
