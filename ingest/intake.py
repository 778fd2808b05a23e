"""Take deliveries from ``landing/<code>/`` into quarantine, validate them, reject or accept.

A delivery moves through: landing -> quarantine (original, sealed) -> read, typed and
validated -> pseudonymised into the warehouse. Two ways to hand a validated delivery to the
privacy step:

- the **single pass** (``take_deliveries(..., single_pass=...)``, what the job runs): the
  typed rows stay in the work database and the privacy step pseudonymises them in the same
  run, in groups, in the order the files were taken; the sealed original stays in
  quarantine until its rows are committed (privacy/step.py, ``SinglePass``);
- the **hand-over file** (without ``single_pass``): a sealed canonical Parquet in quarantine,
  the ledger saying "validated" (then the original is deleted), for
  ``privacy.step.pseudonymise_pending``.

A rejected file moves to ``rejected/`` with its report and loads nothing. The same bytes
delivered again are recorded as a duplicate and load nothing. Every step can be repeated
after a crash: the ledger and the files in quarantine together say where each delivery
stands.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import queue
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

import duckdb

from ingest import ledger
from ingest.read import DeliveryFile, ReadResult, Relation, UnreadableFile, read_delivery
from ingest.registry import load_registry
from ingest.reports import write_report
from ingest.sealed import seal_file, sealed_url
from ingest.standard import CANONICAL_COLUMNS, EVENT_COLUMNS, TICKET_COLUMNS, detect_kind
from ingest.typed import date_formats_of, typed_events_sql, typed_tickets_sql
from ingest.validate import (
    FIXES,
    Problem,
    Validation,
    check_whole_file,
    run_expectations,
    warm_up,
)
from privacy.keyring import open_keyring
from publieksdata.faults import fault_point
from publieksdata.settings import DataHome, intake_workers
from publieksdata.warehouse import work_connection

log = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

# typed tables live in the work database's catalog, shared by intake's workers: one numbering
_TABLES = itertools.count(1)


@dataclass
class Validated:
    """A delivery that passed every rule, its typed rows in ``table`` of the work database."""

    order: int
    base: dict  # its ledger row (ledger.record)
    kind: str
    table: str
    rows: int
    soft: dict
    path: Path  # the sealed original in quarantine: deleted once the rows are committed


class SinglePassLoader(Protocol):
    """Takes the deliveries of one read (privacy/step.py: ``SinglePass``), in any order, and
    pseudonymises them in the order of the read."""

    def expect(self, order: int) -> None:
        """The delivery ``order`` is part of the read (handed to the workers in this order)."""

    def expect_no_more(self) -> None:
        """Every delivery of the read has been handed to the workers."""

    def settle(self, order: int, validated: Validated | None = None) -> None:
        """The delivery ``order`` is decided: validated (handed over) or not (None)."""

    def close(self) -> None:
        """Every delivery is decided: pseudonymise the rest."""


# work connection -> the loader of one read (told each delivery's order as it is handed out)
SinglePassFactory = Callable[[duckdb.DuckDBPyConnection], SinglePassLoader]


@dataclass
class DeliveryOutcome:
    delivery_id: str
    institution: str
    file_name: str
    status: str  # validated, rejected, duplicate
    kind: str | None = None
    rows: int = 0
    soft: dict[str, int] = field(default_factory=dict)
    problems: list[dict] = field(default_factory=list)
    report: str | None = None


def safe_file_name(name: str) -> str:
    """The base name of an upload, reduced to harmless characters (no paths, no control chars)."""
    base = Path(name.replace("\\", "/")).name
    cleaned = _SAFE_NAME.sub("_", base).lstrip("._-").rstrip("._") or "upload"
    return cleaned[:120]


def sha256_of(source: Path | DeliveryFile) -> str:
    """SHA-256 of the delivered bytes (of the plaintext, for a sealed file)."""
    digest = hashlib.sha256()
    with source.open("rb") if isinstance(source, Path) else source.open() as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def canonical_path(home: DataHome, institution: str, delivery_id: str) -> Path:
    """The validated, typed delivery (sealed Parquet) waiting for the privacy step."""
    return home.quarantine / institution / f"{delivery_id}.canonical.parquet"


def upload_state(upload: Path) -> tuple[int, int, int]:
    """(inode, size, mtime) of an upload: if any changes while we read it, it is still being
    written."""
    st = upload.stat(follow_symlinks=False)
    return st.st_ino, st.st_size, st.st_mtime_ns


def plain_upload(path: Path) -> bool:
    """A regular file, not a symbolic link (a link could point at another member's upload or
    anywhere outside the data home: it is never followed) and not hidden (``.`` names are
    uploads in progress by convention)."""
    return path.is_file() and not path.is_symlink() and not path.name.startswith(".")


def quarantine_file(home: DataHome, upload: Path, institution: str, name: str, file_key: bytes,
                    expect: tuple[int, int, int] | None = None, stamp: str | None = None
                    ) -> tuple[Path, str] | None:  # fmt: skip
    """Move an upload into quarantine, sealed; return (quarantined path, SHA-256 of the upload).

    The upload is hashed while it is sealed (one read): the sealed copy is written to a
    ``.partial`` file, renamed to ``<delivery id>__<name>`` (the id holds the hash), and the
    upload is deleted. A crash before the rename leaves the upload in landing (the partial is
    removed next run); a crash after it leaves both, and the next run, finding the same bytes
    under the same name in both, keeps the quarantined one (``_sealed_items``). With
    ``expect`` (upload_state taken before the file was read), an upload that changed while it
    was read is left in landing and None is returned: it is still being written.
    """
    qdir = home.quarantine / institution
    qdir.mkdir(parents=True, exist_ok=True)
    qdir.chmod(0o700)
    partial = qdir / f".{uuid.uuid4().hex}.partial"
    sha = seal_file(upload, partial, file_key)
    if expect is not None and upload_state(upload) != expect:
        partial.unlink()
        return None
    target = qdir / f"{_new_delivery_id(sha, stamp)}__{name}"
    os.replace(partial, target)
    upload.unlink()
    return target, sha


def _new_delivery_id(sha: str, stamp: str | None = None) -> str:
    """``<stamp>-<first 12 hex digits of the SHA-256>``; the stamp (default: now, to the
    microsecond) orders a member's deliveries: names in quarantine sort by it."""
    return f"{stamp or _stamp()}-{sha[:12]}"


def _stamp() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}"


def _stamps(n: int) -> list[str]:
    """``n`` increasing stamps, taken now in one thread: uploads sealed at the same time (by
    several threads, finishing in any order) keep their landing order in quarantine, where an
    interrupted run's originals are read back in name order."""
    out: list[str] = []
    while len(out) < n:
        stamp = _stamp()
        if not out or stamp > out[-1]:
            out.append(stamp)
    return out


def _reject(conn, home: DataHome, path: Path, base: dict, problems: list[dict]) -> DeliveryOutcome:
    stem = f"{base['delivery_id']}__{base['file_name']}"
    target = home.rejected / base["institution_code"] / stem
    target.parent.mkdir(parents=True, exist_ok=True)
    target.parent.chmod(0o700)
    report = {
        "file": base["file_name"],
        "institution": base["institution_code"],
        "delivery_id": base["delivery_id"],
        "sha256": base["sha256"],
        "received_at": base["received_at"].isoformat(timespec="seconds"),
        "kind": base.get("kind"),
        "status": "rejected",
        "problems": problems,
    }
    json_path, _ = write_report(target.parent, stem, report)
    os.replace(path, target)
    reason = "; ".join(
        f"{p['rule']}" + (f" ({p['column']})" if p.get("column") else "") for p in problems
    )
    ledger.record(conn, status="rejected", reason=reason, **base)
    log.warning(
        "delivery %s of %s rejected: %s", base["delivery_id"], base["institution_code"], reason
    )
    return DeliveryOutcome(
        base["delivery_id"], base["institution_code"], base["file_name"], "rejected",
        base.get("kind"), base.get("rows_total") or 0, problems=problems, report=str(json_path),
    )  # fmt: skip


@dataclass
class _Prepared:
    """A delivery read, typed and checked as a whole file, waiting for Great Expectations."""

    path: Path
    base: dict
    kind: str
    table: str
    rows: int
    columns: list[str]
    ignored: list[str]
    checks: Validation
    order: int = 0  # the file's place in the run, for the order of the outcomes


def _base(institution: str, file_name: str, sha: str, delivery_id: str | None) -> dict:
    return {
        "delivery_id": delivery_id or _new_delivery_id(sha),
        "sha256": sha,
        "institution_code": institution,
        "file_name": file_name,
        "received_at": datetime.now(UTC).replace(tzinfo=None),
    }


def _record_duplicate(conn, path: Path, base: dict, earlier_id: str) -> DeliveryOutcome:
    path.unlink()
    ledger.record(conn, status="duplicate", duplicate_of=earlier_id, rows_loaded=0, **base)
    log.info("delivery %s is a duplicate of %s", base["delivery_id"], earlier_id)
    return DeliveryOutcome(base["delivery_id"], base["institution_code"], base["file_name"],
                           "duplicate")  # fmt: skip


def _prepare(
    conn: duckdb.DuckDBPyConnection,
    home: DataHome,
    item: _Item,
    members: dict,
    *,
    file_key: bytes,
    table: str,
) -> DeliveryOutcome | _Prepared:
    """Read one sealed file in quarantine into the typed table ``table`` and run the
    whole-file rules; an outcome when it is already decided (rejected)."""
    institution, path = item.institution, item.path
    source = DeliveryFile(path, file_key)
    base = _base(institution, item.file_name, item.sha, item.delivery_id)
    if institution not in members:
        return _reject(conn, home, path, base, [{
            "rule": "unknown_institution", "column": None, "count": 0, "rows": [],
            "fix": f"'{institution}' is not in the member registry: upload into your own "
                   "institution's folder, or ask the cooperation to register you",
        }])  # fmt: skip

    def load(read: ReadResult, relation: Relation) -> int:
        """The typed table straight from the file: one parse, no table of its text."""
        kind = detect_kind(read.columns)
        if kind is None:  # rejected below; still parsed, so a broken file is named as such
            [(rows,)] = conn.execute(
                f"select count(*) from {relation.sql}", relation.params
            ).fetchall()
            return rows
        text_columns = [c for c in read.columns if c not in read.native]
        formats = date_formats_of(conn, kind, text_columns, relation)
        if kind == "tickets":
            # only ;-files (Dutch Excel) write a decimal comma: the other CSVs a point
            point = read.file_format == "csv" and read.delimiter != ";"
            sql = typed_tickets_sql(read.columns, formats, table, read.native, relation.sql,
                                    decimal_point=point)  # fmt: skip
        else:
            sql = typed_events_sql(read.columns, formats, table, read.native, relation.sql)
        conn.execute(sql, relation.params)
        return conn.execute(f"select count(*) from {table}").fetchone()[0]

    try:
        read = read_delivery(conn, source, load)
    except UnreadableFile as exc:
        conn.execute(f"drop table if exists {table}")
        return _reject(conn, home, path, base, [{
            "rule": "unreadable", "column": None, "count": exc.count, "rows": exc.rows,
            "detail": str(exc),
            "fix": "export the data again as CSV (UTF-8 or Windows-1252), XLSX or Parquet, "
                   "with one header row",
        }])  # fmt: skip
    base["file_format"] = read.file_format
    base["rows_total"] = read.rows
    kind = detect_kind(read.columns)
    base["kind"] = kind
    if kind is None:
        return _reject(conn, home, path, base, [{
            "rule": "unknown_kind", "column": None, "count": 0, "rows": [],
            "fix": "a tickets file needs ticket_id, sold_at and price columns; an events file "
                   "needs event_id, starts_at and discipline",
        }])  # fmt: skip
    known = TICKET_COLUMNS if kind == "tickets" else EVENT_COLUMNS
    ignored = sorted({c for c in read.columns if c not in known} | set(read.ignored_columns))
    checks = check_whole_file(conn, kind, read.columns, table)
    if any(p.rule == "required_column" for p in checks.problems):
        conn.execute(f"drop table {table}")
        return _reject(conn, home, path, base, [p.as_dict() for p in checks.problems])
    return _Prepared(path, base, kind, table, read.rows, read.columns, ignored, checks)


def _finish(conn: duckdb.DuckDBPyConnection, home: DataHome, prepared: _Prepared,
            problems: list[Problem], loader: SinglePassLoader | None = None) -> DeliveryOutcome:  # fmt: skip
    """Reject the delivery; or hand its typed rows to ``loader`` (the single pass); or write
    its sealed canonical Parquet and record it validated."""
    base, table = prepared.base, prepared.table
    handed = False
    try:
        problems = problems + prepared.checks.problems
        if problems:
            return _reject(conn, home, prepared.path, base, [p.as_dict() for p in problems])
        soft = dict(prepared.checks.soft)
        if prepared.ignored:
            soft["unknown_columns"] = len(prepared.ignored)
        institution, delivery_id = base["institution_code"], base["delivery_id"]
        recorded_soft = {**soft, "ignored_columns": prepared.ignored}
        if loader is not None:
            # the rows stay where they are; the ledger hears of the delivery when they are
            # committed, and the original stays in quarantine until then
            handed = True
            loader.settle(prepared.order, Validated(prepared.order, base, prepared.kind, table,
                                                    prepared.rows, recorded_soft, prepared.path))  # fmt: skip
        else:
            target = canonical_path(home, institution, delivery_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            columns = ", ".join(CANONICAL_COLUMNS[prepared.kind])
            conn.execute(f"copy (select {columns} from {table}) "
                         f"to '{_sql_path(sealed_url(tmp))}' (format parquet)")  # fmt: skip
            os.replace(tmp, target)
            ledger.record(conn, status="validated", soft_problems=recorded_soft, **base)
            prepared.path.unlink()
        fault_point("intake.after_validated")
        log.info("delivery %s of %s validated: %s %s rows", delivery_id, institution,
                 prepared.rows, prepared.kind)  # fmt: skip
        return DeliveryOutcome(delivery_id, institution, base["file_name"], "validated",
                               prepared.kind, prepared.rows, soft)  # fmt: skip
    finally:
        if not handed:  # a handed-over table is the loader's to drop
            conn.execute(f"drop table if exists {table}")


class _Batches:
    """Deliveries waiting for Great Expectations, per kind, validated together in groups.

    A group closes at GROUP_ROWS rows or GROUP_FILES files, so the typed tables held in the
    work database stay bounded (a single large file is a group of its own).
    """

    GROUP_ROWS = 500_000
    GROUP_FILES = 200

    def __init__(self, conn, home: DataHome, today: date | None,
                 loader: SinglePassLoader | None = None):  # fmt: skip
        self.conn, self.home, self.today = conn, home, today or date.today()
        self.loader = loader
        self.waiting: dict[str, list[_Prepared]] = {"tickets": [], "events": []}
        self.outcomes: list[tuple[int, DeliveryOutcome]] = []

    def next_table(self) -> str:
        return f"typed_{next(_TABLES)}"

    def add(self, result: DeliveryOutcome | _Prepared, order: int) -> None:
        if isinstance(result, DeliveryOutcome):
            self.outcomes.append((order, result))
            if self.loader is not None:
                self.loader.settle(order)
            return
        result.order = order
        group = self.waiting[result.kind]
        group.append(result)
        if len(group) >= self.GROUP_FILES or sum(p.rows for p in group) >= self.GROUP_ROWS:
            # every kind: the single pass loads in the order files were taken, so a small
            # events delivery waiting here to the end would hold back every later group
            self.flush()

    def flush(self) -> None:
        for k in list(self.waiting):
            group, self.waiting[k] = self.waiting[k], []
            if not group:
                continue
            problems = run_expectations(self.conn, k, [p.table for p in group], self.today)
            for prepared, found in zip(group, problems, strict=True):
                outcome = _finish(self.conn, self.home, prepared, found, self.loader)
                self.outcomes.append((prepared.order, outcome))
                if self.loader is not None and outcome.status != "validated":
                    self.loader.settle(prepared.order)


def _sql_path(path: Path) -> str:
    """A path for a COPY statement (COPY takes no parameters); our own paths only."""
    return str(path).replace("'", "''")


def _original_name(quarantined: Path) -> tuple[str | None, str]:
    """(delivery_id or None, original name) of a quarantined original: ``<id>__<name>``."""
    if "__" in quarantined.name:
        delivery_id, name = quarantined.name.split("__", 1)
        return delivery_id, name
    return None, quarantined.name


@dataclass
class _Item:
    """A sealed file in quarantine waiting to be read: an upload of this run, or one left by
    an interrupted run."""

    order: int
    institution: str
    path: Path
    file_name: str
    sha: str
    delivery_id: str | None = None


def take_deliveries(
    home: DataHome,
    today: date | None = None,
    only: list[str] | None = None,
    *,
    single_pass: SinglePassFactory | None = None,
    memory_limit: str | None = None,
) -> list[DeliveryOutcome]:
    """Run intake over the files waiting in landing (and any left in quarantine by a crash).

    ``only`` limits the landing files to these paths relative to ``landing/``
    (``<code>/<file>``), as the landing sensor requests one run per delivery.

    Files are sealed into quarantine (by several threads, but taken in name order, so which
    of two equal files is the duplicate does not depend on timing), and each is handed to
    PUBLIEKSDATA_INTAKE_WORKERS workers as soon as it and the files before it are sealed: the
    workers read, type and validate them while the rest are still being sealed, each with its
    own connection to the work database. Great Expectations is imported beside the sealing.
    A second copy of bytes already in this run waits until the first is decided: a duplicate
    if the first was validated, else read in its own right.

    With ``single_pass``, validated deliveries go on to the privacy step in this run (the
    loader it makes for each read); without it they wait in quarantine as sealed canonical
    Parquet. ``memory_limit``: the work database's (default PUBLIEKSDATA_WORK_MEMORY).
    """
    home.create()
    members = load_registry(home)
    file_key = open_keyring(home).derive("file")
    outcomes: list[tuple[int, DeliveryOutcome]] = []
    # Great Expectations imported beside the sealing, not in a worker's first validation
    warming = warm_up(today or date.today()) if _files_waiting(home) else None
    try:
        with work_connection(home, file_key, memory_limit) as conn:
            _take(conn, home, members, file_key, today, only, single_pass, outcomes)
    finally:
        if warming is not None:
            warming.join()
    return [outcome for _, outcome in sorted(outcomes, key=lambda pair: pair[0])]


def _files_waiting(home: DataHome) -> bool:
    """Whether landing/ or quarantine/ holds a file in a member's folder."""
    return any(
        path.is_file()
        for folder in (home.landing, home.quarantine)
        if folder.exists()
        for path in folder.glob("*/*")
    )


def _take(conn, home: DataHome, members: dict, file_key: bytes, today: date | None,
          only: list[str] | None, single_pass: SinglePassFactory | None,
          outcomes: list[tuple[int, DeliveryOutcome]]) -> None:  # fmt: skip
    """take_deliveries on its work connection: the readers take each file as it is sealed."""

    def duplicate(item: _Item) -> bool:
        earlier = ledger.find_by_sha(conn, item.sha, item.institution)
        if earlier is not None:
            base = _base(item.institution, item.file_name, item.sha, item.delivery_id)
            outcomes.append((item.order, _record_duplicate(conn, item.path, base, earlier[0])))
        return earlier is not None

    first: set[tuple[str, str]] = set()
    later: list[_Item] = []

    def first_copies() -> Iterator[_Item]:
        """The sealed files as they come (in name order), each handed to the readers as soon
        as it is sealed; duplicates of earlier deliveries are recorded here, and a second
        copy of bytes in this run waits for the first to be decided."""
        for item in _sealed_items(conn, home, file_key, only):
            if duplicate(item):
                continue
            if (item.institution, item.sha) in first:
                later.append(item)
            else:
                first.add((item.institution, item.sha))
                yield item

    outcomes.extend(
        _read_in_parallel(conn, home, first_copies(), members, file_key, today, single_pass)
    )
    for item in later:  # a copy of bytes read in this run: the first copy is decided now
        if not duplicate(item):
            outcomes.extend(
                _read_in_parallel(conn, home, [item], members, file_key, today, single_pass)
            )


def _upload_order(upload: Path) -> tuple[int, str]:
    """An upload's place in its member's night: when it was written, then its name."""
    try:
        return upload.lstat().st_mtime_ns, upload.name
    except OSError:  # gone meanwhile: skipped below
        return 0, upload.name


def _sealed_items(conn, home: DataHome, file_key: bytes,
                  only: list[str] | None) -> Iterator[_Item]:  # fmt: skip
    """The files to read: originals left in quarantine by an interrupted run, then the new
    uploads, each sealed into quarantine first. Yielded one by one in that order, an upload
    as soon as it and every upload before it are sealed: the readers start on the first
    while the threads seal the rest."""
    items: list[_Item] = []
    # 1. originals left in quarantine by an interrupted run
    for folder in sorted(
        p for p in home.quarantine.iterdir() if p.is_dir() and not p.name.startswith(".")
    ):
        for path in sorted(folder.iterdir()):
            if path.suffix in (".tmp", ".partial"):
                path.unlink()
                continue
            if "__" not in path.name:
                # a canonical file: the privacy step's, unless its rows were committed
                # by a run that died before deleting it
                delivery_id = path.name.split(".", 1)[0]
                if ledger.status_of(conn, delivery_id) == "accepted":
                    path.unlink()
                continue
            delivery_id, name = _original_name(path)
            sha = sha256_of(DeliveryFile(path, file_key))
            earlier = ledger.find_by_sha(conn, sha, folder.name)
            if earlier is not None and earlier[0] == delivery_id:
                path.unlink()  # its canonical form was already recorded
                continue
            # (equal bytes of another delivery: recorded below as its duplicate)
            items.append(_Item(len(items), folder.name, path, name, sha, delivery_id))
            yield items[-1]
    left = {(item.institution, item.file_name, item.sha) for item in items}
    # 2. new uploads, sealed by PUBLIEKSDATA_INTAKE_WORKERS threads (hashing and AES-GCM
    # release the GIL part of the time; each file is fsynced) but taken in a fixed order: per
    # member in upload order (modification time, then name), so that of a ticket delivered
    # twice in one night the later upload wins (delivery-standard.md: "a later delivery ...
    # replaces the earlier row"), and which of two equal files is the duplicate never depends
    # on the threads' timing
    uploads: list[tuple[Path, str, str, tuple[int, int, int]]] = []  # upload, member, name, state
    if home.landing.exists():
        for folder in sorted(
            p for p in home.landing.iterdir() if p.is_dir() and not p.is_symlink()
        ):
            for upload in sorted(folder.iterdir(), key=_upload_order):
                if only is not None and str(upload.relative_to(home.landing)) not in only:
                    continue
                if upload.is_symlink():
                    log.warning("landing/%s/%s is a symbolic link: not taken (upload the "
                                "file itself)", folder.name, safe_file_name(upload.name))  # fmt: skip
                if not plain_upload(upload):
                    continue
                uploads.append((upload, safe_file_name(folder.name),
                                safe_file_name(upload.name), upload_state(upload)))  # fmt: skip

    stamps = dict(zip((entry[0] for entry in uploads), _stamps(len(uploads)), strict=True))

    def seal(entry) -> tuple[Path, str] | None:
        upload, institution, name, before = entry
        return quarantine_file(home, upload, institution, name, file_key, expect=before,
                               stamp=stamps[upload])  # fmt: skip

    # each upload is sealed under its own name (<delivery id>__<name> in its member's folder),
    # so two threads never write the same file
    with ThreadPoolExecutor(max(1, min(intake_workers(), len(uploads))),
                            thread_name_prefix="seal") as pool:  # fmt: skip
        for (_, institution, name, _), sealed in zip(uploads, pool.map(seal, uploads), strict=True):
            if sealed is None:
                log.warning("landing/%s/%s changed while it was read (still being "
                            "uploaded?): left for the next run", institution, name)  # fmt: skip
                continue
            quarantined, sha = sealed
            if (institution, name, sha) in left:
                # the upload an interrupted run sealed and died before deleting from landing
                # (its threads seal several at once, so a crash can fall between the two):
                # one delivery, already waiting in quarantine, not a duplicate of itself
                quarantined.unlink()
                log.info("landing/%s/%s was already taken into quarantine by an interrupted "
                         "run", institution, name)  # fmt: skip
                continue
            fault_point("intake.after_quarantine")
            delivery_id, _ = _original_name(quarantined)
            items.append(_Item(len(items), institution, quarantined, name, sha, delivery_id))
            yield items[-1]


def _read_in_parallel(conn, home: DataHome, items: Iterable[_Item], members: dict,
                      file_key: bytes, today: date | None,
                      single_pass: SinglePassFactory | None = None
                      ) -> list[tuple[int, DeliveryOutcome]]:  # fmt: skip
    """Read, type and validate ``items`` with PUBLIEKSDATA_INTAKE_WORKERS workers.

    ``items`` may still be coming (uploads being sealed): each goes into a queue the moment
    it is there, in its order, and each worker takes the next file from that queue, on a
    connection of its own, and validates its own groups. With ``single_pass``, the worker that
    completes a group of validated deliveries (in the order of ``items``) pseudonymises it
    while the others read on. The first failure of a worker stops the others after their
    current file and is raised; nothing it had not committed is lost (the originals stay in
    quarantine).
    """
    items = iter(items)
    head = next(items, None)
    if head is None:
        return []
    waiting: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
    failed = threading.Event()
    loader = single_pass(conn) if single_pass else None

    def work() -> list[tuple[int, DeliveryOutcome]]:
        with conn.cursor() as cursor:
            batches = _Batches(cursor, home, today, loader)
            try:
                while not failed.is_set():
                    item = waiting.get()
                    if item is None:  # the end: passed on to the next worker
                        waiting.put(None)
                        break
                    batches.add(_prepare(cursor, home, item, members, file_key=file_key,
                                         table=batches.next_table()), item.order)  # fmt: skip
                batches.flush()
            except BaseException:
                failed.set()
                raise
        return batches.outcomes

    with ThreadPoolExecutor(max(1, intake_workers()), thread_name_prefix="intake") as pool:
        futures = [pool.submit(work) for _ in range(max(1, intake_workers()))]
        try:
            for item in itertools.chain([head], items):
                if failed.is_set():
                    break
                if loader is not None:
                    loader.expect(item.order)
                waiting.put(item)
        except BaseException:
            failed.set()  # the workers stop after their current file
            raise
        finally:
            if loader is not None:
                loader.expect_no_more()
            waiting.put(None)
    results = []
    for future in futures:
        results += future.result()  # the first failure is raised here
    if loader is not None:
        loader.close()
    return results


__all__ = ["take_deliveries", "DeliveryOutcome", "Problem", "FIXES"]
