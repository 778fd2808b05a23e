"""Publish a release: every table of the warehouse schema ``published``, frozen in a folder.

The release is written into ``published/.incoming-<id>/``, every file is
checksummed and verified, the folder is renamed to ``published/<id>/`` and
only then ``published/current`` is switched (a symlink replaced atomically).
A reader of ``current`` therefore sees the previous complete release or the
new complete release, never half of one; a crash leaves ``current`` alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

import publieksdata
from publieksdata.settings import DataHome, PublieksdataError, k_threshold

PUBLISHED_SCHEMA = "published"


@dataclass
class Release:
    release_id: str
    path: Path
    manifest: dict


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _sql_str(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def published_tables(conn: duckdb.DuckDBPyConnection, db: str = "wh") -> list[str]:
    return [r[0] for r in conn.execute(
        "select table_name from duckdb_tables() where database_name = ? and schema_name = ? "
        "order by table_name", [db, PUBLISHED_SCHEMA]).fetchall()]  # fmt: skip


def _new_release_id(home: DataHome) -> str:
    base = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    release_id, n = base, 1
    while (home.published / release_id).exists():
        n += 1
        release_id = f"{base}-{n}"
    return release_id


def publish_release(home: DataHome, *, open_years_perturbed: bool = False) -> Release:
    """Write, verify and switch to a new release of the warehouse's published tables."""
    home.published.mkdir(parents=True, exist_ok=True)
    release_id = _new_release_id(home)
    incoming = home.published / f".incoming-{release_id}"
    incoming.mkdir()
    (incoming / "parquet").mkdir()
    conn = duckdb.connect(":memory:")
    try:
        conn.execute("attach ? as wh (read_only)", [str(home.warehouse)])
        tables = published_tables(conn)
        if not tables:
            raise PublieksdataError(
                "the warehouse has no published tables: run the dbt build first"
            )
        conn.execute("attach ? as rel", [str(incoming / "marts.duckdb")])
        row_counts = {}
        for table in tables:
            conn.execute(
                f'create table rel.main."{table}" as select * from wh.{PUBLISHED_SCHEMA}."{table}"'
            )
            conn.execute(
                f'copy (select * from wh.{PUBLISHED_SCHEMA}."{table}") to '
                f"{_sql_str(incoming / 'parquet' / f'{table}.parquet')} (format parquet)"
            )
            row_counts[table] = conn.execute(f'select count(*) from rel.main."{table}"').fetchone()[
                0
            ]
        conn.execute("detach rel")
    finally:
        conn.close()
    files = {
        str(p.relative_to(incoming)): _sha256(p)
        for p in sorted(incoming.rglob("*")) if p.is_file()
    }  # fmt: skip
    manifest = {
        "release_id": release_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_version": publieksdata.__version__,
        "k": k_threshold(),
        "open_years_perturbed": open_years_perturbed,
        "tables": row_counts,
        "files": files,
    }
    (incoming / "manifest.json").write_text(json.dumps(manifest, indent=2))
    verify_release(incoming)
    final = home.published / release_id
    os.replace(incoming, final)
    _switch_current(home, release_id)
    return Release(release_id, final, manifest)


def verify_release(folder: Path) -> dict:
    """Check every file the manifest lists against its SHA-256; raise on any mismatch."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for rel_path, digest in manifest["files"].items():
        path = folder / rel_path
        if not path.is_file() or _sha256(path) != digest:
            raise PublieksdataError(
                f"release {folder.name}: {rel_path} does not match the manifest"
            )
    return manifest


def _switch_current(home: DataHome, release_id: str) -> None:
    link = home.published / "current"
    tmp = home.published / f".current-{release_id}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(release_id, tmp)
    os.replace(tmp, link)


def current_release(home: DataHome) -> Path | None:
    link = home.published / "current"
    return link.resolve() if link.is_symlink() and link.resolve().is_dir() else None


def list_releases(home: DataHome) -> list[str]:
    if not home.published.exists():
        return []
    return sorted(p.name for p in home.published.iterdir()
                  if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))  # fmt: skip


def remove_incomplete(home: DataHome) -> int:
    """Delete half-written release folders left by a crash."""
    n = 0
    for p in home.published.glob(".incoming-*"):
        shutil.rmtree(p, ignore_errors=True)
        n += 1
    return n
