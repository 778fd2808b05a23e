"""Per-institution packages of a release: ``institutions/<code>/``.

What one member may see: its own rows of every published table that has an
``institution_code`` (those rows already carry the peer-group aggregates beside its own
values), plus the sector tables (no ``institution_code``) when they name no institution. Each
table as Parquet and as spreadsheet-safe CSV (exports/csv_safe.py), a data dictionary, a
LEESMIJ.txt and report.html.

Before a package counts as written, every text file in it is searched for the code and the
name of every other member; a hit raises, so the release is never published.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from exports.csv_safe import write_csv
from exports.dictionary import dictionary_rows, load_descriptions
from exports.report import Institution, ReleaseInfo, Table, render_report
from publieksdata.settings import DataHome, PublieksdataError, publication_workers

INSTITUTION_COLUMN = "institution_code"
# columns that would name an institution in a table without institution_code
NAMING_COLUMNS = {"institution", "institution_name", "instelling", "instelling_naam", "name"}
SAFE_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
TEXT_SUFFIXES = {".csv", ".html", ".txt", ".json", ".md"}

README_NL = """Publieksdata - gegevens voor {name} ({code})
Release {release_id} van {created_at}

report.html              het rapport: open het in een webbrowser (werkt zonder internet)
csv/<tabel>.csv          de tabellen, voor Excel en andere programma's
parquet/<tabel>.parquet  dezelfde tabellen, voor analisten (Python, R, DuckDB)
data_dictionary.csv      elke kolom: betekenis, eenheid en Nederlandse term
csv/deliveries.csv       uw geleverde bestanden: geaccepteerd, afgekeurd of dubbel, en wat u
                         in uw volgende export kunt verbeteren (ook in het rapport, deel 4)

In deze map staan alleen de rijen van uw eigen instelling, met daarnaast gemiddelden van uw
vergelijkingsgroep (peer_*) en cijfers over de hele sector. Cijfers van een andere instelling
staan er nooit in.

Lege cel: niet beschikbaar, of onderdrukt. suppressed = true betekent dat een cijfer in die rij
is weggelaten omdat er minder dan {k} personen achter zitten.

CSV: UTF-8, komma als scheidingsteken, punt als decimaalteken, eerste regel = kolomnamen.
Beveiliging tegen formules: tekst die begint met = + - @ (of met een tab, een regelterugloop of
een ') heeft een ' ervoor gekregen, zodat een spreadsheet hem als tekst toont en niet uitvoert.
Haal die ene ' weg voor de oorspronkelijke tekst. Getallen krijgen nooit een '.
"""


@dataclass
class PackageResult:
    institutions: list[str]
    omitted_tables: list[str]


def read_registry(home: DataHome) -> list[Institution]:
    """The members of the registry (``institutions.csv``), in file order."""
    if not home.registry.is_file():
        return []
    with home.registry.open(encoding="utf-8-sig", newline="") as fh:
        return [
            Institution(
                code=(row.get("code") or "").strip(),
                name=(row.get("name") or "").strip() or (row.get("code") or "").strip(),
                discipline=(row.get("discipline") or "").strip(),
                pc4=(row.get("pc4") or "").strip(),
            )
            for row in csv.DictReader(fh)
            if (row.get("code") or "").strip()
        ]


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _trie_pattern(terms: list[str]) -> str:
    """An alternation of ``terms`` factored by common prefixes (a trie), longest match first.

    It matches exactly what ``term1|term2|...`` (longest first) matches, but the engine
    rejects a position after one character instead of trying every term there: with two
    hundred members a package was scanned at 2 MB/s, now about ten times faster.
    """
    trie: dict = {}
    for term in terms:
        node = trie
        for ch in term:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        branches = [re.escape(ch) + build(sub) for ch, sub in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


class NamePolice:
    """Finds the code or name of any member other than the one a package is for."""

    def __init__(self, members: list[Institution]):
        self.members = members
        terms: dict[str, str] = {}
        for m in members:
            for term in (m.code, m.name):
                if term:
                    terms.setdefault(term.lower(), m.code)
        self._owner = terms
        self._pattern = (
            re.compile(r"(?<![\w])(" + _trie_pattern(sorted(terms)) + r")(?![\w])", re.IGNORECASE)
            if terms
            else None
        )

    def _owner_of(self, found: str) -> str:
        """The member a matched text names (case-insensitively, as the pattern matched it)."""
        owner = self._owner.get(found.lower())
        if owner is None:  # a case pair that lower() does not map (e.g. the long s)
            owner = next(code for term, code in self._owner.items()
                         if re.fullmatch(re.escape(term), found, re.IGNORECASE))  # fmt: skip
        return owner

    def names_nobody(self, text: str) -> bool:
        """Whether ``text`` names no member at all, its own included.

        Such a text passes ``others_in`` for every member: ``others_in`` blanks out only
        whole-word occurrences of the own member's terms, each of which would be a match here,
        so with none there is nothing to blank and nothing to find. A file that is the same in
        every package is then checked once, not once per package.
        """
        return self._pattern is None or self._pattern.search(text) is None

    def others_in(self, text: str, own: Institution | None) -> list[str]:
        """Codes of the other members whose code or name occurs in ``text``."""
        if self._pattern is None:
            return []
        if own is not None:
            for term in sorted({own.code, own.name} - {""}, key=len, reverse=True):
                # whole words only, as the pattern: removing "th_a" must not hide "th_ab"
                own_term = r"(?<![\w])" + re.escape(term) + r"(?![\w])"
                text = re.sub(own_term, "\x00", text, flags=re.IGNORECASE)
        found = {self._owner_of(m.group(1)) for m in self._pattern.finditer(text)}
        return sorted(found - {own.code} if own else found)


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1].lower()) for r in conn.execute(f'describe "{table}"').fetchall()]


def _string_values(conn, table: str, columns: list[tuple[str, str]]) -> str:
    text_cols = [c for c, t in columns if t == "varchar"]
    if not text_cols:
        return ""
    parts = []
    for c in text_cols:
        parts += [
            r[0]
            for r in conn.execute(
                f'select distinct "{c}" from "{table}" where "{c}" is not null'
            ).fetchall()
        ]
    return "\n".join(parts)


def _write_table(
    conn, query: str, folder: Path, table: str, columns: list[tuple[str, str]]
) -> Table:
    conn.execute(
        f"copy ({query}) to {_quote(str(folder / 'parquet' / f'{table}.parquet'))} (format parquet)"
    )
    names = [c for c, _ in columns]
    rows = conn.execute(query).fetchall()
    write_csv(folder / "csv" / f"{table}.csv", names, rows)
    return _table(names, rows)


class _MemberRows:
    """A table with ``institution_code``, read once and cut into each member's rows.

    The rows are sorted by institution_code and then by every column, so a member's rows are
    one contiguous run, in the order ``select ... where institution_code = ? order by all``
    gives. Reading the table once instead of twice per member (a COPY and a SELECT; 900 of
    each at 100 members) took the member tables of a release from 3.6 s to under 1 s.
    """

    def __init__(self, conn, table: str, columns: list[tuple[str, str]], codes: list[str]):
        self.names = [c for c, _ in columns]
        order = ", ".join(
            _ident(c)
            for c in [INSTITUTION_COLUMN] + [c for c in self.names if c != INSTITUTION_COLUMN]
        )
        # only the members this process writes (a worker has its share of them): the largest
        # member table has a row per member, year and PC4 area
        query = (
            f"select * from {_ident(table)} where {_ident(INSTITUTION_COLUMN)} in "
            f"(select unnest(?::varchar[])) order by {order}"
        )
        self.arrow = conn.sql(query, params=[codes]).to_arrow_table()
        self.rows = conn.execute(query, [codes]).fetchall()
        at = self.names.index(INSTITUTION_COLUMN)
        self.runs: dict[str, tuple[int, int]] = {}
        for i, row in enumerate(self.rows):
            start, _ = self.runs.get(row[at], (i, 0))
            self.runs[row[at]] = (start, i + 1 - start)

    def write(self, folder: Path, table: str, code: str) -> Table:
        start, length = self.runs.get(code, (0, 0))
        pq.write_table(self.arrow.slice(start, length), folder / "parquet" / f"{table}.parquet")
        rows = self.rows[start : start + length]
        write_csv(folder / "csv" / f"{table}.csv", self.names, rows)
        return _table(self.names, rows)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _checked_text(path: Path) -> str:
    """A package file's text as the name check reads it."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    return html.unescape(text) if path.suffix == ".html" else text


def check_package(
    folder: Path, police: NamePolice, own: Institution, cleared: frozenset[str] = frozenset()
) -> None:
    """Raise when any text file of the package names another member.

    ``cleared``: paths (relative to the package, ``/``-separated) of copies of files already
    found to name no member at all (``NamePolice.names_nobody``); they are not read again.
    """
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix not in TEXT_SUFFIXES:
            continue
        if path.relative_to(folder).as_posix() in cleared:
            continue
        others = police.others_in(_checked_text(path), own)
        if others:
            raise PublieksdataError(
                f"the package of {own.code} names another member ({', '.join(others[:3])}) in "
                f"{path.relative_to(folder)}; the release is not published. If a member's name "
                "is an ordinary word, give it a more specific name in institutions.csv"
            )


@dataclass
class _Plan:
    """What every member's package needs, worked out once: a worker process gets it as JSON."""

    release_dir: str
    release: ReleaseInfo
    members: list[Institution]
    own_tables: list[str]
    sector_tables: list[str]
    omitted: list[str]
    shared: str  # the sector tables' files, written once, copied into each package
    cleared: list[str]

    def to_json(self) -> str:
        data = asdict(self)
        data["release"]["today"] = self.release.today.isoformat()
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> _Plan:
        data = json.loads(text)
        release = data.pop("release")
        release = ReleaseInfo(**{**release, "today": dt.date.fromisoformat(release["today"])})
        members = [Institution(**m) for m in data.pop("members")]
        return cls(release=release, members=members, **data)


class _Sources:
    """The release's tables as the packages need them, read from its marts.duckdb."""

    def __init__(self, conn, plan: _Plan, tables: dict[str, list[tuple[str, str]]],
                 codes: list[str], sector: dict[str, Table] | None = None):  # fmt: skip
        self.sector = sector or {
            t: _read_table(conn, f'select * from "{t}" order by all', tables[t])
            for t in plan.sector_tables
        }
        self.member_rows = {t: _MemberRows(conn, t, tables[t], codes) for t in plan.own_tables}
        self.police = NamePolice(plan.members)


def _table(names: list[str], rows: list) -> Table:
    return Table(names, [dict(zip(names, r, strict=True)) for r in rows])


def _read_table(conn, query: str, columns: list[tuple[str, str]]) -> Table:
    return _table([c for c, _ in columns], conn.execute(query).fetchall())


def _write_package(plan: _Plan, sources: _Sources, member: Institution) -> None:
    """Write ``institutions/<code>/`` of one member, then check it names no other member."""
    if not SAFE_CODE.match(member.code):
        raise PublieksdataError(
            f"institution code {member.code!r} in institutions.csv cannot be a folder "
            "name: use letters, digits, '_', '-' or '.'"
        )
    shared = Path(plan.shared)
    folder = Path(plan.release_dir) / "institutions" / member.code
    (folder / "parquet").mkdir(parents=True)
    (folder / "csv").mkdir()
    data: dict[str, Table] = {}
    for t in sorted(plan.own_tables + plan.sector_tables):
        if t in sources.sector:
            for kind in ("parquet", "csv"):
                shutil.copyfile(shared / kind / f"{t}.{kind}", folder / kind / f"{t}.{kind}")
            data[t] = sources.sector[t]
            continue
        data[t] = sources.member_rows[t].write(folder, t, member.code)
    shutil.copyfile(shared / "data_dictionary.csv", folder / "data_dictionary.csv")
    release = plan.release
    (folder / "LEESMIJ.txt").write_text(
        README_NL.format(
            name=member.name,
            code=member.code,
            k=release.k,
            release_id=release.release_id,
            created_at=release.created_at,
        ),
        encoding="utf-8",
    )
    (folder / "report.html").write_text(
        render_report(member, data, release, plan.omitted), encoding="utf-8"
    )
    check_package(folder, sources.police, member, frozenset(plan.cleared))


class ParentGone(Exception):
    """A worker's step process died (killed with its run): the release folder the worker
    writes into is abandoned, and the next run removes it (not while a worker writes)."""


def _write_share(plan: _Plan, sources: _Sources, codes: list[str], parent: int | None = None
                 ) -> None:  # fmt: skip
    """Write the packages of the members in ``codes``; in a worker (``parent``: the step's
    process id) stop before the next package once the step's process is gone."""
    wanted = set(codes)
    for member in plan.members:
        if member.code in wanted:
            if parent is not None and os.getppid() != parent:
                raise ParentGone()
            _write_package(plan, sources, member)


def write_packages_of(plan: _Plan, codes: list[str], parent: int | None = None) -> None:
    """A worker process's share: the packages of the members in ``codes``."""
    conn = duckdb.connect(str(Path(plan.release_dir) / "marts.duckdb"), read_only=True)
    try:
        tables = {t: _columns(conn, t) for t in plan.own_tables + plan.sector_tables}
        sources = _Sources(conn, plan, tables, codes)
    finally:
        conn.close()
    _write_share(plan, sources, codes, parent)


MIN_PACKAGES_PER_WORKER = 10  # fewer packages than this are not worth starting a process for
_NAME_CHECK_FAILED = 3  # a worker's exit status: its message is a PublieksdataError's


def worker_count(members: int) -> int:
    """Processes that write ``members`` packages, this one included."""
    return max(1, min(publication_workers(), members // MIN_PACKAGES_PER_WORKER))


class ReadyWorkers:
    """Worker processes started before their jobs are known (``publish_release`` starts them
    when it knows a release will be written): each imports what it needs (~0.25 s of a core)
    while this process still prepares the release, then waits for its job on its standard
    input. A worker never given a job sees its input close and ends without writing anything.
    """

    def __init__(self, count: int):
        self._ready: list[tuple[subprocess.Popen, int]] = []
        try:
            for _ in range(count):
                self._ready.append(_spawn_worker())
        except BaseException:
            self.close()
            raise

    def take(self) -> tuple[subprocess.Popen, int]:
        return self._ready.pop(0) if self._ready else _spawn_worker()

    def close(self) -> None:
        """End the workers not taken (their input closed: they end without a job)."""
        ready, self._ready = self._ready, []
        for _, feed in ready:
            os.close(feed)
        for worker, _ in ready:
            worker.communicate()


def _spawn_worker() -> tuple[subprocess.Popen, int]:
    """A worker process that reads its job from the pipe whose write end is returned."""
    job_end, feed = os.pipe()
    try:
        worker = subprocess.Popen(
            [sys.executable, "-m", "exports.package_worker"],
            stdin=job_end, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    except BaseException:
        os.close(feed)
        raise
    finally:
        os.close(job_end)
    return worker, feed


def _start_worker(plan: _Plan, number: int, codes: list[str],
                  ready: ReadyWorkers | None = None) -> subprocess.Popen:  # fmt: skip
    """Give worker ``number`` its job: a ready one when there is one, else a new process."""
    worker, feed = ready.take() if ready is not None else _spawn_worker()
    job = json.dumps({"plan": plan.to_json(), "codes": codes, "parent": os.getpid()})
    try:
        with os.fdopen(feed, "w", encoding="utf-8") as pipe:
            pipe.write(job)
    except BrokenPipeError:
        pass  # the worker ended before its job: _end_worker reports how
    return worker


def _end_worker(worker: subprocess.Popen) -> None:
    """Wait for a worker; raise what it failed with (a PublieksdataError's message is ours and
    names no value; of any other error only its class)."""
    _, said = worker.communicate()
    said = (said or "").strip()
    if worker.returncode == 0:
        return
    if worker.returncode == _NAME_CHECK_FAILED:
        raise PublieksdataError(said.splitlines()[-1])
    raise RuntimeError(
        f"a publication worker process failed ({said.splitlines()[-1] if said else 'no message'})"
    )


def build_packages(
    release_dir: Path,
    home: DataHome,
    release: ReleaseInfo,
    ready: ReadyWorkers | None = None,
) -> PackageResult:
    """Write ``institutions/<code>/`` for every member into a release folder being written.

    The members are split over PUBLIEKSDATA_PUBLICATION_WORKERS processes (this one and
    worker processes; at least MIN_PACKAGES_PER_WORKER packages each): writing a package is
    Python's work, on one core per process (docs/performance.md, "Fifteenth round"). Workers
    come from ``ready`` (started ahead, see ``worker_count``) as far as it has them.
    """
    registry = read_registry(home)
    conn = duckdb.connect(str(release_dir / "marts.duckdb"), read_only=True)
    try:
        tables = {t: _columns(conn, t) for (t,) in conn.execute("show tables").fetchall()}
        own_tables = [t for t, cols in tables.items() if INSTITUTION_COLUMN in dict(cols)]
        codes_in_data = set()
        for t in own_tables:
            codes_in_data |= {
                r[0]
                for r in conn.execute(
                    f'select distinct {INSTITUTION_COLUMN} from "{t}" '
                    f"where {INSTITUTION_COLUMN} is not null"
                ).fetchall()
            }
        known = {m.code for m in registry}
        members = registry + [Institution(c, c) for c in sorted(codes_in_data - known)]
        police = NamePolice(members)
        sector_tables, omitted = [], []
        for t, cols in tables.items():
            if t in own_tables:
                continue
            names_member = bool({c for c, _ in cols} & NAMING_COLUMNS) or police.others_in(
                _string_values(conn, t, cols), None
            )
            (omitted if names_member else sector_tables).append(t)
        descriptions = load_descriptions(home.dbt)
        dictionary = dictionary_rows(
            {t: tables[t] for t in sorted(own_tables + sector_tables)}, descriptions
        )
        # sector tables are the same in every package: written once, copied into each
        shared = Path(tempfile.mkdtemp(prefix=".sector-", dir=release_dir))
        (shared / "parquet").mkdir()
        (shared / "csv").mkdir()
        sector_data = {
            t: _write_table(conn, f'select * from "{t}" order by all', shared, t, tables[t])
            for t in sector_tables
        }
        write_csv(
            shared / "data_dictionary.csv",
            ["table", "column", "data_type", "meaning", "unit", "dutch_term"],
            dictionary,
        )
        # files the same in every package that name no member at all: checked here once
        cleared = [
            name
            for name in ["data_dictionary.csv", *(f"csv/{t}.csv" for t in sector_tables)]
            if police.names_nobody(_checked_text(shared / name))
        ]
        plan = _Plan(str(release_dir), release, members, own_tables, sector_tables, omitted,
                     str(shared), cleared)  # fmt: skip
        n = worker_count(len(members))
        parts = [[m.code for m in members[i::n]] for i in range(n)]
        workers = [_start_worker(plan, i, codes, ready)
                   for i, codes in enumerate(parts[1:], start=1)]  # fmt: skip
        try:
            _write_share(plan, _Sources(conn, plan, tables, parts[0], sector_data), parts[0])
            for worker in workers:
                _end_worker(worker)
        finally:
            # on any failure no worker outlives the step: one still writing into the
            # release folder would race the caller's removal of it
            for worker in workers:
                if worker.returncode is None:
                    worker.kill()
                    worker.communicate()
        unwritten = [m.code for m in members
                     if not (release_dir / "institutions" / m.code / "report.html").is_file()]  # fmt: skip
        if unwritten:  # a defect of ours: the release would lack packages
            raise RuntimeError(f"{len(unwritten)} members' packages were not written")
        shutil.rmtree(shared)
    finally:
        conn.close()
    return PackageResult([m.code for m in members], omitted)
