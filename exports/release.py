"""Publish a release: every table of the warehouse schema ``published``, frozen in a folder.

The release is written into ``published/.incoming-<id>/``: ``marts.duckdb``,
``parquet/<table>.parquet`` and the members' packages ``institutions/<code>/``
(exports/packages.py). Every file is checksummed into ``manifest.json`` and verified, the
folder is renamed to ``published/<id>/`` and only then ``published/current`` is switched (a
symlink replaced atomically). A reader of ``current`` therefore sees the previous complete
release or the new complete release, never half of one; a crash leaves ``current`` alone and
the next publication removes the half-written folder.

One publisher at a time: ``published/.lock`` is held (flock) while a release is written; the
kernel drops it when the process dies, however it dies. After the switch, releases beyond the
newest ``PUBLIEKSDATA_KEEP_RELEASES`` (default 14) are deleted, never the one ``current``
points at.

A publication whose content would equal the current release's is skipped when asked
(``only_if_changed``, as the job asks): the manifest carries a ``content_fingerprint`` of what
the release is made of -- every published table's columns and rows (doubles to 12 significant
digits, rows in any order), the registry, k, the perturbation flag, the code and DuckDB
versions and the data dictionary -- and when the new one equals the current release's (and the
current release still verifies), ``current`` is kept and nothing is written. Erasure and key
rotation force a new release regardless.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

import publieksdata
from publieksdata.settings import DataHome, PublieksdataError, k_threshold

if TYPE_CHECKING:
    from exports.packages import ReadyWorkers

PUBLISHED_SCHEMA = "published"
DEFAULT_KEEP_RELEASES = 14
# marts.duckdb is written in the oldest storage format that holds the tables, so that analysts
# can open it with any DuckDB from 1.0 on (the DuckDB CLI lags behind the Python package)
RELEASE_STORAGE_VERSION = "v1.0.0"
LOCK_NAME = ".lock"
FINGERPRINT_VERSION = "2"  # 2: rows summed as 64-bit hashes


@dataclass
class Release:
    release_id: str
    path: Path
    manifest: dict
    unchanged: bool = False  # the current release was kept: its content is the same


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
    # a later release of the same second sorts after every one still there, also when the
    # first ones of that second were already pruned
    taken = [_release_order(p.name)[1] for p in home.published.glob(f"{base}*") if p.is_dir()]
    if not taken:
        return base
    return f"{base}-{max(taken) + 1}"


def keep_releases() -> int:
    """How many releases to keep (``PUBLIEKSDATA_KEEP_RELEASES``, default 14, at least 1)."""
    raw = os.environ.get("PUBLIEKSDATA_KEEP_RELEASES", str(DEFAULT_KEEP_RELEASES))
    try:
        keep = int(raw)
    except ValueError:
        raise PublieksdataError(
            f"PUBLIEKSDATA_KEEP_RELEASES must be a whole number, got {raw!r}"
        ) from None
    if keep < 1:
        raise PublieksdataError(
            f"PUBLIEKSDATA_KEEP_RELEASES={keep} is refused: keep at least 1 release"
        )
    return keep


@contextlib.contextmanager
def _publication_lock(home: DataHome) -> Iterator[bool]:
    """Hold ``published/.lock``; yields False (without waiting) when another process holds it."""
    home.published.mkdir(parents=True, exist_ok=True)
    fd = os.open(home.published / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def publish_release(
    home: DataHome,
    *,
    open_years_perturbed: bool = False,
    only_if_changed: bool = False,
    checked: Callable[[], object] | None = None,
) -> Release:
    """Write, verify and switch to a new release of the warehouse's published tables.

    With ``only_if_changed``, a release whose content would equal the current one is not
    written: the current release is returned with ``unchanged=True``.

    ``checked``: waits for a check of the release that runs beside this call (the release
    step's person-key guard, on a thread of its own) and raises to block it. It is called
    before anything is written, and before an unchanged release is kept.
    """
    from exports.packages import ReadyWorkers, read_registry, worker_count

    keep = keep_releases()  # a wrong setting fails before anything is written
    with _publication_lock(home) as locked:
        if not locked:
            raise PublieksdataError(
                f"another release is being written (lock {home.published / LOCK_NAME} is held); "
                "run again when it has finished"
            )
        _remove_incomplete(home)
        fingerprint = content_fingerprint(home, open_years_perturbed)
        if only_if_changed:
            kept = _current_if_same(home, fingerprint)
            if kept is not None:
                if checked is not None:
                    checked()
                return kept
        # the package workers import while the check and the release's tables finish (the
        # registry's members; a member only in the data gets a worker started when needed)
        ready = ReadyWorkers(worker_count(len(read_registry(home))) - 1)
        try:
            if checked is not None:
                checked()
            release = _write_release(home, open_years_perturbed, fingerprint, ready)
        except BaseException:
            _remove_incomplete(home)  # a failed release leaves nothing behind
            raise
        finally:
            ready.close()  # the workers no job was given to
        prune_releases(home, keep, _locked=True)
    return release


def content_fingerprint(home: DataHome, open_years_perturbed: bool = False) -> str:
    """SHA-256 over what a release would be made of, without its id and time (see the top)."""
    from exports.dictionary import load_descriptions

    digest = hashlib.sha256()

    def add(label: str, value: object) -> None:
        digest.update(f"{label}\x1f{value}\x1e".encode())

    add("fingerprint", FINGERPRINT_VERSION)
    add("code_version", publieksdata.__version__)
    add("duckdb", duckdb.__version__)  # DuckDB's hash() is stable within a version only
    add("k", k_threshold())
    add("open_years_perturbed", open_years_perturbed)
    add("registry", _sha256(home.registry) if home.registry.is_file() else "")
    add("dictionary", json.dumps(load_descriptions(home.dbt), sort_keys=True))
    conn = duckdb.connect(":memory:")
    try:
        conn.execute("attach ? as wh (read_only)", [str(home.warehouse)])
        for table in published_tables(conn):
            columns = conn.execute(
                "select column_name, data_type from duckdb_columns() where database_name = 'wh' "
                "and schema_name = ? and table_name = ? order by column_index",
                [PUBLISHED_SCHEMA, table],
            ).fetchall()
            cells = ", ".join(
                f"printf('%.12g', \"{name}\")" if kind in ("DOUBLE", "FLOAT") else f'"{name}"'
                for name, kind in columns
            )  # fmt: skip
            # the rows as a multiset: the sum of their 64-bit hashes (a change of content that
            # keeps the sum is a chance of 2^-64; it would only keep the current release). A
            # third of the md5 over each row's JSON, sorted, that this replaced
            rows, rows_digest = conn.execute(
                f"select count(*), cast(coalesce(sum(hash({cells})), 0) as varchar) "
                f'from wh.{PUBLISHED_SCHEMA}."{table}"'
            ).fetchone()
            add("table", json.dumps([table, columns, rows, rows_digest]))
    finally:
        conn.close()
    return digest.hexdigest()


def _current_if_same(home: DataHome, fingerprint: str) -> Release | None:
    """The current release when its content fingerprint is ``fingerprint`` and it verifies."""
    current = current_release(home)
    if current is None:
        return None
    try:
        manifest = verify_release(current)
    except (PublieksdataError, OSError, ValueError, KeyError):
        return None  # damaged: publish a fresh one
    if manifest.get("content_fingerprint") != fingerprint:
        return None
    return Release(current.name, current, manifest, unchanged=True)


def _write_release(home: DataHome, open_years_perturbed: bool, fingerprint: str,
                   ready: ReadyWorkers | None = None) -> Release:  # fmt: skip
    from exports.packages import build_packages
    from exports.report import ReleaseInfo

    release_id = _new_release_id(home)
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
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
        conn.execute(
            f"attach ? as rel (storage_version '{RELEASE_STORAGE_VERSION}')",
            [str(incoming / "marts.duckdb")],
        )
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
    info = ReleaseInfo(
        release_id=release_id, created_at=created_at, k=k_threshold(),
        open_years_perturbed=open_years_perturbed, code_version=publieksdata.__version__,
    )  # fmt: skip
    packages = build_packages(incoming, home, info, ready)
    files = {
        str(p.relative_to(incoming)): _sha256(p)
        for p in sorted(incoming.rglob("*")) if p.is_file()
    }  # fmt: skip
    manifest = {
        "release_id": release_id,
        "created_at": created_at,
        "code_version": publieksdata.__version__,
        "k": info.k,
        "open_years_perturbed": open_years_perturbed,
        "tables": row_counts,
        "institutions": packages.institutions,
        "omitted_from_packages": packages.omitted_tables,
        "files": files,
        "content_fingerprint": fingerprint,
    }
    (incoming / "manifest.json").write_text(json.dumps(manifest, indent=2))
    verify_release(incoming)
    final = home.published / release_id
    os.replace(incoming, final)
    _switch_current(home, release_id)
    _fsync_dir(home.published)
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


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_release(home: DataHome) -> Path | None:
    link = home.published / "current"
    return link.resolve() if link.is_symlink() and link.resolve().is_dir() else None


_RELEASE_ID = re.compile(r"^(\d{8}T\d{6}Z)(?:-(\d+))?$")


def _release_order(name: str) -> tuple[str, int]:
    match = _RELEASE_ID.match(name)
    return (match.group(1), int(match.group(2) or 1)) if match else (name, 0)


def list_releases(home: DataHome) -> list[str]:
    """Release ids in ``published/``, oldest first (half-written folders are not releases)."""
    if not home.published.exists():
        return []
    return sorted((p.name for p in home.published.iterdir()
                   if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")),
                  key=_release_order)  # fmt: skip


@dataclass
class ReleaseSummary:
    release_id: str
    created_at: str | None
    code_version: str | None
    k: int | None
    tables: int
    institutions: int
    files: int
    is_current: bool


def describe_releases(home: DataHome) -> list[ReleaseSummary]:
    """Every release with what its manifest says, oldest first; the current one is marked."""
    current = current_release(home)
    out = []
    for release_id in list_releases(home):
        folder = home.published / release_id
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError):
            manifest = {}
        out.append(ReleaseSummary(
            release_id=release_id,
            created_at=manifest.get("created_at"),
            code_version=manifest.get("code_version"),
            k=manifest.get("k"),
            tables=len(manifest.get("tables", {})),
            institutions=len(manifest.get("institutions", [])),
            files=len(manifest.get("files", {})),
            is_current=current is not None and folder.resolve() == current,
        ))  # fmt: skip
    return out


def prune_releases(home: DataHome, keep: int | None = None, *, _locked: bool = False) -> list[str]:
    """Delete all but the newest ``keep`` releases; never the one ``current`` points at.

    A release is first renamed to ``.deleting-<id>`` (so it stops being listed at once) and
    then removed. Returns the ids deleted.
    """
    keep = keep_releases() if keep is None else keep
    if keep < 1:
        raise PublieksdataError("keep at least 1 release")
    if not _locked:
        with _publication_lock(home) as locked:
            if not locked:
                return []
            return prune_releases(home, keep, _locked=True)
    current = current_release(home)
    releases = list_releases(home)
    doomed = [r for r in releases[: max(len(releases) - keep, 0)]
              if current is None or (home.published / r).resolve() != current]  # fmt: skip
    for release_id in doomed:
        trash = home.published / f".deleting-{release_id}"
        os.replace(home.published / release_id, trash)
        shutil.rmtree(trash, ignore_errors=True)
    return doomed


def remove_incomplete(home: DataHome) -> int:
    """Delete half-written release folders left by a crash (not while a release is written)."""
    if not home.published.exists():
        return 0
    with _publication_lock(home) as locked:
        return _remove_incomplete(home) if locked else 0


def _remove_incomplete(home: DataHome) -> int:
    n = 0
    for pattern in (".incoming-*", ".deleting-*", ".current-*"):
        for p in home.published.glob(pattern):
            if p.is_symlink() or p.is_file():
                p.unlink()
            else:
                shutil.rmtree(p, ignore_errors=True)
            n += 1
    return n
