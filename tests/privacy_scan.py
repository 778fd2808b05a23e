"""Search every file a job wrote for identifier values (used by the end-to-end tests).

DuckDB and Parquet files compress strings, so they are searched through DuckDB, column by
column; every other file is searched as bytes.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb


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


def find_identifiers(root: Path, needles: list[str], skip: tuple[str, ...] = ()) -> list[str]:
    """Files (and tables) under ``root`` that contain any needle, case-insensitively."""
    pattern = _pattern(needles)
    raw_needles = [n.lower().encode() for n in needles]
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = str(path.relative_to(root))
        if any(rel.startswith(s) for s in skip):
            continue
        if path.suffix == ".duckdb":
            conn = duckdb.connect(":memory:")
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
                    hits.append(f"{rel}:{schema}.{table}")
            conn.close()
        elif path.suffix == ".parquet":
            conn = duckdb.connect(":memory:")
            if _scan_relation(conn, f"read_parquet('{path}')", pattern):
                hits.append(rel)
            conn.close()
        else:
            data = path.read_bytes().lower()
            if any(n in data for n in raw_needles):
                hits.append(rel)
    return hits
