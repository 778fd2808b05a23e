"""Releases and members' packages on a small hand-made warehouse (fast; no dbt, no Dagster).

The warehouse holds tables in the schema ``published`` shaped like the real marts, for three
members; one sector table names a member and so must stay out of the packages.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exports.csv_safe import FORMULA_STARTS, escape_cell, unescape_cell
from exports.packages import NamePolice, check_package, read_registry
from exports.release import (
    current_release,
    describe_releases,
    list_releases,
    prune_releases,
    publish_release,
    verify_release,
)
from exports.report import Institution
from publieksdata.settings import DataHome, PublieksdataError

REPO = Path(__file__).resolve().parent.parent

MEMBERS = [
    # code, name, discipline, pc4: one name contains another's whole ("Theater Zuid" is in
    # "Theater Zuid Oost"), so the scan must tell them apart
    ("th_zuid", "Theater Zuid", "theater", "1011"),
    ("th_zuidoost", "Theater Zuid Oost", "theater", "1012"),
    ("mu_rivier", "Museum aan de Rivier", "museum", "3511"),
    ("fe_nieuw", "Festival Nieuwkomer", "festival", "3512"),  # registered, no data yet
]
WITH_DATA = MEMBERS[:3]

# text values a spreadsheet would run as a formula, and the values they must read back as
INJECTIONS = ["=HYPERLINK(\"x\",\"y\")", "+31 6 1234", "-2+3", "@SUM(A1)", "\tTAB", "\rCR",
              "'already quoted", "gewoon"]  # fmt: skip


def make_warehouse(home: DataHome) -> None:
    home.registry.write_text(
        "code,name,discipline,pc4\n" + "".join(f"{c},{n},{d},{p}\n" for c, n, d, p in MEMBERS)
    )
    conn = duckdb.connect(str(home.warehouse))
    conn.execute("create schema published")
    rows = []
    for i, (code, *_) in enumerate(WITH_DATA):
        for year in (2024, 2025):
            rows.append(
                f"('{code}', {year}, {1000 + 100 * i}, {200 + 10 * i}, {0.4 + i / 10}, "
                f"{0.5 if year == 2025 else 'null'}, false, 'S', 'sector', 3, 1100.0, 0.45)"
            )
    conn.execute(
        "create table published.benchmark (institution_code varchar, year integer, tickets "
        "bigint, n_persons bigint, share_online double, retention double, suppressed boolean, "
        "size_class varchar, peer_level varchar, peer_n_institutions integer, "
        "tickets_peer_mean double, share_online_peer_mean double)"
    )
    conn.execute("insert into published.benchmark values " + ", ".join(rows))
    conn.execute(
        "create table published.loyalty_frequency as select code as institution_code, "
        "2025 as year, band as frequency_band, o as band_order, "
        "case when band = '6+' then null else 40 end::bigint as n_persons, "
        "case when band = '6+' then null else 0.25 end as share, band = '6+' as suppressed "
        "from (values " + ", ".join(f"('{c}')" for c, *_ in WITH_DATA) + ") m(code), "
        "(values ('1', 1), ('2', 2), ('3-5', 3), ('6+', 4)) b(band, o)"
    )
    # area names carry the injection strings; distance_km has negative numbers, never prefixed
    area_rows = [
        f"('{c}', 2025, 'gemeente', 'GM{j:04d}', {_sql(name)}, 1000, {-1.5 * j}, 12, 12.0, false)"
        for c, *_ in WITH_DATA
        for j, name in enumerate(INJECTIONS)
    ]
    conn.execute(
        "create table published.market_area (institution_code varchar, year integer, "
        "area_level varchar, area_code varchar, area_name varchar, population bigint, "
        "distance_km double, n_persons bigint, penetration double, suppressed boolean)"
    )
    conn.execute("insert into published.market_area values " + ", ".join(area_rows))
    conn.execute(
        "create table published.market_sector as select 'GM0363' as gemeente_code, "
        "'Amsterdam' as gemeente_naam, 'theater' as discipline, 2025 as year, 120::bigint as "
        "n_persons, 1.2 as penetration, false as suppressed"
    )
    # a sector table that names a member: it must not go into any package
    conn.execute(
        "create table published.sector_notes as select 'best seller: Museum aan de Rivier' as "
        "note, 2025 as year"
    )
    conn.close()


def _sql(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@pytest.fixture
def warehouse_home(home: DataHome) -> DataHome:
    make_warehouse(home)
    return home


def test_release_holds_a_verified_package_per_member(warehouse_home):
    rel = publish_release(warehouse_home)
    assert current_release(warehouse_home) == rel.path
    manifest = verify_release(rel.path)
    assert manifest["code_version"]
    assert manifest["institutions"] == [c for c, *_ in MEMBERS]
    assert manifest["omitted_from_packages"] == ["sector_notes"]
    for code, *_ in MEMBERS:
        folder = rel.path / "institutions" / code
        for name in ("report.html", "data_dictionary.csv", "LEESMIJ.txt",
                     "csv/benchmark.csv", "parquet/benchmark.parquet", "csv/market_sector.csv"):  # fmt: skip
            assert (folder / name).is_file(), name
            assert f"institutions/{code}/{name}" in manifest["files"]
        assert not (folder / "csv" / "sector_notes.csv").exists()


def test_the_manifest_says_perturbed_only_when_the_release_holds_an_open_year(warehouse_home):
    """open_years_perturbed is true only when a published table holds a year still open at the
    run date (until 1 February of the next year; macros/perturbation.sql)."""
    from datetime import date

    from orchestration.assets.publication import holds_open_year

    warehouse = warehouse_home.warehouse  # years 2024 and 2025
    assert holds_open_year(warehouse, date(2025, 6, 1))
    assert holds_open_year(warehouse, date(2026, 1, 31))  # 2025 still takes late deliveries
    assert not holds_open_year(warehouse, date(2026, 2, 1))


def test_the_manifest_judges_open_years_at_the_date_the_dbt_build_used(warehouse_home):
    """Without a date, holds_open_year reads the first open year the dbt build perturbed with
    (main.dbt_run_date, written by the on-run-start hook), not today's date: a build just before
    midnight on 31 January and a release just after must agree."""
    from orchestration.assets.publication import holds_open_year

    warehouse = warehouse_home.warehouse  # years 2024 and 2025
    for first_open, expected in ((2025, True), (2026, False), (2024, True)):
        with duckdb.connect(str(warehouse)) as conn:
            conn.execute(
                "create or replace table main.dbt_run_date as "
                "select date '2026-01-31' as as_of_date, ? as first_open_year",
                [first_open],
            )
        assert holds_open_year(warehouse) is expected, first_open


def test_each_package_holds_exactly_its_members_rows_in_order(warehouse_home):
    """The member tables are read once and cut per member (exports/packages.py): each package's
    Parquet and CSV hold what a query for that member alone gives, in the same order."""
    from exports.csv_safe import format_cell

    rel = publish_release(warehouse_home)
    marts = duckdb.connect(str(rel.path / "marts.duckdb"), read_only=True)
    tables = [t for (t,) in marts.execute(
        "select table_name from information_schema.columns where column_name = 'institution_code'"
    ).fetchall()]  # fmt: skip
    assert len(tables) >= 3
    checked = 0
    for code, *_ in MEMBERS:
        folder = rel.path / "institutions" / code
        for t in tables:
            want = marts.execute(
                f'select * from "{t}" where institution_code = ? order by all', [code]
            ).fetchall()
            got = duckdb.execute(
                f"select * from read_parquet('{folder / 'parquet' / f'{t}.parquet'}')"
            ).fetchall()
            assert got == want, (code, t)
            with (folder / "csv" / f"{t}.csv").open(encoding="utf-8-sig", newline="") as fh:
                assert list(csv.reader(fh))[1:] == [[format_cell(v) for v in r] for r in want]
            checked += bool(want)
    assert checked >= 8
    marts.close()


def test_a_member_without_data_gets_an_empty_package(warehouse_home):
    rel = publish_release(warehouse_home)
    folder = rel.path / "institutions" / "fe_nieuw"
    with (folder / "csv" / "benchmark.csv").open(encoding="utf-8-sig") as fh:
        assert len(list(csv.reader(fh))) == 1  # the header only
    assert "nog geen cijfers" in (folder / "report.html").read_text()


def test_marts_file_opens_in_duckdb_1_x(warehouse_home):
    """The release's marts.duckdb is in DuckDB's v1.0 storage format (file header version 64):
    analysts' DuckDB CLIs, which lag behind the Python package, can open it."""
    rel = publish_release(warehouse_home)
    header = (rel.path / "marts.duckdb").read_bytes()[:20]
    assert header[8:12] == b"DUCK" and int.from_bytes(header[12:20], "little") == 64
    conn = duckdb.connect(str(rel.path / "marts.duckdb"), read_only=True)
    assert conn.execute("select count(*) from benchmark").fetchone()[0] == 6
    conn.close()


def test_every_file_of_the_release_is_in_the_manifest_with_its_sha256(warehouse_home):
    import hashlib

    rel = publish_release(warehouse_home)
    manifest = json.loads((rel.path / "manifest.json").read_text())
    on_disk = {str(p.relative_to(rel.path)) for p in rel.path.rglob("*") if p.is_file()}
    assert on_disk - {"manifest.json"} == set(manifest["files"])
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((rel.path / name).read_bytes()).hexdigest() == digest, name
    # and a changed byte is caught
    victim = rel.path / "institutions" / "th_zuid" / "csv" / "benchmark.csv"
    victim.write_bytes(victim.read_bytes() + b"\n")
    with pytest.raises(PublieksdataError, match="does not match"):
        verify_release(rel.path)


def _all_text_of(path: Path) -> str:
    """Every value of a file as text: parquet through DuckDB, everything else as bytes."""
    if path.suffix == ".parquet":
        conn = duckdb.connect()
        rows = conn.execute(f"select * from read_parquet('{path}')").fetchall()
        cols = [
            d[0] for d in conn.execute(f"describe select * from read_parquet('{path}')").fetchall()
        ]
        conn.close()
        return "\n".join(cols) + "\n" + "\n".join("|".join(map(str, r)) for r in rows)
    return path.read_bytes().decode("utf-8", errors="replace")


def assert_packages_name_no_other_member(release: Path, members) -> int:
    """Scan every file of every package for every other member's code and name."""
    checked = 0
    for code, name, *_ in members:
        others = [(c, n) for c, n, *_ in members if c != code]
        own_terms = sorted({code, name}, key=len, reverse=True)
        for path in sorted((release / "institutions" / code).rglob("*")):
            if not path.is_file():
                continue
            text = _all_text_of(path)
            if path.suffix == ".html":
                import html

                text = html.unescape(text)
            for term in own_terms:  # the member's own name may contain another's
                text = re.sub(re.escape(term), "#OWN#", text, flags=re.IGNORECASE)
            for other_code, other_name in others:
                for needle in (other_code, other_name):
                    assert not re.search(
                        r"(?<!\w)" + re.escape(needle) + r"(?!\w)", text, re.IGNORECASE
                    ), f"{path.relative_to(release)} names {needle}"
            checked += 1
    return checked


def test_a_package_names_no_other_member(warehouse_home):
    rel = publish_release(warehouse_home)
    assert assert_packages_name_no_other_member(rel.path, MEMBERS) >= 3 * 10
    # the member's own rows are all there, and nobody else's
    conn = duckdb.connect()
    got = conn.execute(
        "select distinct institution_code from read_parquet(?)",
        [str(rel.path / "institutions" / "th_zuid" / "parquet" / "market_area.parquet")],
    ).fetchall()
    assert got == [("th_zuid",)]


def test_the_package_check_catches_a_planted_name(warehouse_home):
    rel = publish_release(warehouse_home)
    members = read_registry(warehouse_home)
    police = NamePolice(members)
    own = next(m for m in members if m.code == "th_zuidoost")
    folder = rel.path / "institutions" / own.code
    check_package(folder, police, own)  # its own name contains "Theater Zuid": not a hit
    (folder / "csv" / "planted.csv").write_text("x\nvisitors also went to theater zuid\n")
    with pytest.raises(PublieksdataError, match="names another member"):
        check_package(folder, police, own)


def test_the_name_check_sees_a_member_whose_code_extends_the_own_code():
    police = NamePolice([Institution("th_a", "Theater A"), Institution("th_ab", "Theater AB")])
    own = Institution("th_a", "Theater A")
    assert police.others_in("th_a, Theater A.", own) == []
    assert police.others_in("zie ook th_ab", own) == ["th_ab"]
    assert police.others_in("zie ook theater ab", own) == ["th_ab"]


def test_a_text_names_nobody_when_it_names_no_member_not_even_its_own():
    police = NamePolice([Institution("th_a", "Theater A"), Institution("mu_b", "Muziek B")])
    assert police.names_nobody("gemeente,bezoekers\nTilburg,12\nxth_ay\n")
    assert not police.names_nobody("zie ook theater a")
    assert not police.names_nobody("mu_b")  # a file shared by all packages names mu_b
    assert NamePolice([]).names_nobody("th_a")


@settings(max_examples=500, deadline=None)
@given(
    terms=st.lists(st.text("abAB _-.", min_size=1, max_size=6), min_size=1, max_size=8),
    text=st.text("abAB _-.x\n", max_size=60),
    own_index=st.integers(min_value=0, max_value=7),
)
def test_a_text_that_names_nobody_passes_every_packages_check(terms, text, own_index):
    """What makes checking a file shared by all packages once enough: a text in which
    ``names_nobody`` finds no term passes ``others_in`` for every member, whatever the own
    member's terms that ``others_in`` blanks out first."""
    members = [Institution(f"m{i}", term) for i, term in enumerate(terms)]
    police = NamePolice(members)
    assert police.names_nobody(text) == (police.others_in(text, None) == [])
    if police.names_nobody(text):
        assert police.others_in(text, members[own_index % len(members)]) == []


@settings(max_examples=200, deadline=None)
@given(
    terms=st.lists(st.text("abAB _-.", min_size=1, max_size=6), min_size=1, max_size=8),
    text=st.text("abAB _-.x\n", max_size=60),
)
def test_the_name_check_finds_what_a_plain_alternation_finds(terms, text):
    """The trie-shaped pattern of NamePolice gives the same members as the plain alternation
    of every code and name, longest first (what it replaced)."""
    members = [Institution(f"m{i}", term) for i, term in enumerate(terms)]
    police = NamePolice(members)
    owner = {}
    for m in members:
        for term in (m.code, m.name):
            owner.setdefault(term.lower(), m.code)
    plain = re.compile(
        r"(?<![\w])(" + "|".join(re.escape(t) for t in sorted(owner, key=len, reverse=True))
        + r")(?![\w])", re.IGNORECASE)  # fmt: skip
    assert police.others_in(text, None) == sorted({owner[m.group(1).lower()]
                                                   for m in plain.finditer(text)})  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.text(st.sampled_from(list("=+-@\t\r\n'a1 ＝＋－＠\u00a0\u200b\ufeff\u202eé٣²"))),
    )
)
def test_escape_cell_follows_the_rule_whatever_the_first_character(value):
    """escape_cell returns a cell that starts with a letter or digit at once (its fast path):
    the rule written out in full (csv_safe's docstring) gives the same for every text, and no
    alphanumeric code point ever needs the quote."""
    from exports.csv_safe import _ALSO_STARTS, _LEADING_BLANKS, FORMULA_STARTS, QUOTE, escape_cell

    def rule(v: str) -> str:
        starts = FORMULA_STARTS + _ALSO_STARTS
        return QUOTE + v if v.startswith((*starts, QUOTE)) or v.lstrip(_LEADING_BLANKS).startswith(starts) else v  # fmt: skip

    assert escape_cell(value) == rule(value)
    assert not any(c.isalnum() for c in _LEADING_BLANKS + "".join(FORMULA_STARTS + _ALSO_STARTS))


def test_csv_cells_are_safe_against_formula_injection(warehouse_home):
    rel = publish_release(warehouse_home)
    path = rel.path / "institutions" / "mu_rivier" / "csv" / "market_area.csv"
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(INJECTIONS)
    for row in rows:
        for column, cell in row.items():
            if column == "distance_km":
                continue  # numbers: checked below
            assert not cell.startswith(FORMULA_STARTS), (column, cell)
    names = sorted(unescape_cell(r["area_name"]) for r in rows)
    assert names == sorted(INJECTIONS)
    assert {r["area_name"] for r in rows} >= {"'=HYPERLINK(\"x\",\"y\")", "'@SUM(A1)", "''already quoted", "gewoon"}  # fmt: skip
    # negative numbers stay numbers
    assert sorted(float(r["distance_km"]) for r in rows)[0] < 0
    # the data dictionary is written by the same writer
    with (path.parent.parent / "data_dictionary.csv").open(encoding="utf-8-sig") as fh:
        dictionary = list(csv.DictReader(fh))
    assert {"table", "column", "meaning", "unit", "dutch_term"} <= set(dictionary[0])
    assert all(not v.startswith(FORMULA_STARTS) for r in dictionary for v in r.values())


def test_escape_cell_round_trips():
    for value in INJECTIONS + ["", "-", "=", "a=b"]:
        assert unescape_cell(escape_cell(value)) == value
        assert not escape_cell(value).startswith(FORMULA_STARTS)


def test_report_leaves_out_missing_sections_with_a_note(warehouse_home):
    rel = publish_release(warehouse_home)
    page = (rel.path / "institutions" / "th_zuid" / "report.html").read_text()
    assert page.startswith("<!doctype html>") and 'lang="nl"' in page
    assert "Theater Zuid" in page and "<svg" in page
    assert "onderdrukt" in page  # the suppressed 6+ band
    assert "ontbreekt in deze release" in page  # e.g. loyalty_cohorts is not in this warehouse
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "http://" not in page and "https://" not in page


def test_old_releases_are_pruned_but_current_is_kept(warehouse_home, monkeypatch):
    monkeypatch.setenv("PUBLIEKSDATA_KEEP_RELEASES", "2")
    ids = [publish_release(warehouse_home).release_id for _ in range(4)]
    assert list_releases(warehouse_home) == ids[-2:]
    assert current_release(warehouse_home).name == ids[-1]
    # a rollback points current at the older release; pruning to one keeps the newest by
    # count and the current one by rule
    os.replace(_symlink_to(warehouse_home, ids[-2]), warehouse_home.published / "current")
    deleted = prune_releases(warehouse_home, keep=1)
    assert deleted == []
    assert list_releases(warehouse_home) == ids[-2:]
    assert current_release(warehouse_home).name == ids[-2]
    summaries = describe_releases(warehouse_home)
    assert [s.is_current for s in summaries] == [True, False]
    assert summaries[0].institutions == 4


def _symlink_to(home: DataHome, release_id: str) -> Path:
    tmp = home.published / ".current-test"
    os.symlink(release_id, tmp)
    return tmp


def test_keep_releases_setting_is_checked(warehouse_home, monkeypatch):
    from exports.release import keep_releases

    monkeypatch.setenv("PUBLIEKSDATA_KEEP_RELEASES", "0")
    with pytest.raises(PublieksdataError, match="at least 1"):
        keep_releases()
    monkeypatch.setenv("PUBLIEKSDATA_KEEP_RELEASES", "many")
    with pytest.raises(PublieksdataError, match="whole number"):
        keep_releases()


KILLED_PUBLISHER = """
import sys, time
from pathlib import Path
import exports.packages as packages
from exports.release import publish_release
from publieksdata.settings import data_home

marker = Path(sys.argv[1])
written = []
original = packages.check_package

def check_then_stall(folder, police, own, *args):
    original(folder, police, own, *args)
    written.append(own.code)
    if len(written) == 2:  # two packages complete, the third not begun: mid-release
        marker.write_text(",".join(written))
        time.sleep(600)

packages.check_package = check_then_stall
publish_release(data_home())
"""


def test_a_killed_publication_leaves_current_on_the_previous_release(warehouse_home, tmp_path):
    first = publish_release(warehouse_home)
    marker = tmp_path / "stalled"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_PUBLISHER, str(marker)], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the publisher never reached its packages"
            time.sleep(0.1)
        # the new release is half written right now
        incoming = list(warehouse_home.published.glob(".incoming-*"))
        assert len(incoming) == 1
        assert (incoming[0] / "marts.duckdb").is_file()
        assert (incoming[0] / "institutions" / "th_zuid" / "report.html").is_file()
        assert not (incoming[0] / "manifest.json").exists()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    # readers still see the first release, whole and verified
    assert current_release(warehouse_home) == first.path
    verify_release(current_release(warehouse_home))
    assert list_releases(warehouse_home) == [first.release_id]
    # the next publication removes the half-written folder (the dead process's lock is gone)
    second = publish_release(warehouse_home)
    assert not list(warehouse_home.published.glob(".incoming-*"))
    assert current_release(warehouse_home) == second.path
    assert list_releases(warehouse_home) == [first.release_id, second.release_id]


def _package_files(release) -> dict[str, bytes]:
    """Every file of a release's packages; in its report and LEESMIJ the release's id and
    time replaced (the only things two releases of the same data differ in)."""
    out = {}
    for path in sorted((release.path / "institutions").rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            for value in (release.release_id, release.manifest["created_at"]):
                data = data.replace(value.encode(), b"<release>")
            out[str(path.relative_to(release.path))] = data
    return out


def test_packages_written_by_worker_processes_are_the_ones_written_here(warehouse_home,
                                                                        monkeypatch):  # fmt: skip
    """Publication splits the members over worker processes: the packages are the same,
    byte for byte, as when one process writes them all."""
    import exports.packages

    monkeypatch.setenv("PUBLIEKSDATA_PUBLICATION_WORKERS", "1")
    alone = publish_release(warehouse_home)
    monkeypatch.setattr(exports.packages, "MIN_PACKAGES_PER_WORKER", 1)
    monkeypatch.setenv("PUBLIEKSDATA_PUBLICATION_WORKERS", "3")
    split = publish_release(warehouse_home)
    assert split.release_id != alone.release_id
    files = _package_files(split)
    assert files == _package_files(alone)
    assert len({name.split("/")[1] for name in files}) == len(MEMBERS)
    verify_release(split.path)
    assert not list(split.path.glob(".sector-*"))


@pytest.mark.parametrize("workers", [1, 3])
def test_a_release_that_names_another_member_is_not_published(warehouse_home, monkeypatch,
                                                              workers):  # fmt: skip
    """Also when the package that names another member is written by a worker process."""
    import exports.packages

    monkeypatch.setattr(exports.packages, "MIN_PACKAGES_PER_WORKER", 1)
    monkeypatch.setenv("PUBLIEKSDATA_PUBLICATION_WORKERS", str(workers))
    first = publish_release(warehouse_home)
    conn = duckdb.connect(str(warehouse_home.warehouse))
    conn.execute(
        "update published.market_area set area_name = 'near Museum aan de Rivier' "
        "where institution_code = 'th_zuidoost' and area_code = 'GM0007'"
    )  # th_zuidoost: the second member, a worker's when there are three
    conn.close()
    with pytest.raises(PublieksdataError, match="package of th_zuidoost names another member"):
        publish_release(warehouse_home)
    assert current_release(warehouse_home) == first.path
    assert list_releases(warehouse_home) == [first.release_id]
    assert not list(warehouse_home.published.glob(".incoming-*"))


def test_a_worker_whose_step_died_writes_no_further_package(monkeypatch):
    """A step killed with its run leaves its workers orphaned: each stops before its next
    package (exit status 4) instead of writing into a release folder the next run removes."""
    import types

    import exports.package_worker
    import exports.packages

    written = []
    monkeypatch.setattr(exports.packages, "_write_package",
                        lambda plan, sources, member: written.append(member.code))  # fmt: skip
    plan = types.SimpleNamespace(members=[Institution("a", "A"), Institution("b", "B")])
    exports.packages._write_share(plan, None, ["a", "b"], parent=os.getppid())  # alive
    assert written == ["a", "b"]
    written.clear()
    with pytest.raises(exports.packages.ParentGone):
        exports.packages._write_share(plan, None, ["a", "b"], parent=os.getpid())  # not ours
    assert written == []

    job = json.dumps({"plan": "{}", "codes": ["a"], "parent": os.getpid()}).encode()
    seen = []

    def write_packages_of(plan, codes, parent):
        seen.append(parent)
        raise exports.packages.ParentGone()

    monkeypatch.setattr(exports.packages, "write_packages_of", write_packages_of)
    monkeypatch.setattr(exports.packages._Plan, "from_json", classmethod(lambda cls, text: None))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(job)))  # the job's pipe
    assert exports.package_worker.main() == exports.package_worker.PARENT_GONE == 4
    assert seen == [os.getpid()]


def test_a_failed_worker_stops_the_others_before_the_release_is_removed(warehouse_home,
                                                                       monkeypatch):  # fmt: skip
    """When one worker fails, the step does not return while another still writes into the
    release folder (it would race the removal of the folder: CI saw a leftover .incoming-)."""
    import exports.packages

    monkeypatch.setattr(exports.packages, "MIN_PACKAGES_PER_WORKER", 1)
    monkeypatch.setenv("PUBLIEKSDATA_PUBLICATION_WORKERS", "3")
    conn = duckdb.connect(str(warehouse_home.warehouse))
    conn.execute(
        "update published.market_area set area_name = 'near Museum aan de Rivier' "
        "where institution_code = 'th_zuidoost' and area_code = 'GM0007'"
    )  # th_zuidoost: worker 1's; worker 2 is a process that does not end by itself
    conn.close()
    started = []
    real_start = exports.packages._start_worker

    def start(plan, number, codes, ready=None):
        if number == 2:
            worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                      stderr=subprocess.PIPE, text=True)  # fmt: skip
        else:
            worker = real_start(plan, number, codes, ready)
        started.append(worker)
        return worker

    monkeypatch.setattr(exports.packages, "_start_worker", start)
    try:
        with pytest.raises(PublieksdataError, match="package of th_zuidoost names another"):
            publish_release(warehouse_home)
        assert len(started) == 2
        assert all(worker.returncode is not None for worker in started)
    finally:
        for worker in started:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert not list(warehouse_home.published.glob(".incoming-*"))


def test_a_release_waits_for_its_check_and_a_failed_check_writes_nothing(warehouse_home,
                                                                          monkeypatch):  # fmt: skip
    """The release step's guard runs on a thread beside publish_release, which waits for it
    (``checked``) before it writes anything: a failed check, also one that fails late, leaves
    no folder, no worker process and the current release as it was, changed content or not."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import exports.packages
    import exports.release

    monkeypatch.setattr(exports.packages, "MIN_PACKAGES_PER_WORKER", 1)
    monkeypatch.setenv("PUBLIEKSDATA_PUBLICATION_WORKERS", "2")
    first = publish_release(warehouse_home)
    spawned = []
    real_spawn = exports.packages._spawn_worker
    monkeypatch.setattr(exports.packages, "_spawn_worker",
                        lambda: spawned.append(real_spawn()) or spawned[-1])  # fmt: skip
    fingerprinted = threading.Event()
    real_fingerprint = exports.release.content_fingerprint

    def fingerprint(*args, **kwargs):
        fingerprinted.set()
        return real_fingerprint(*args, **kwargs)

    monkeypatch.setattr(exports.release, "content_fingerprint", fingerprint)
    seen = []

    def late_failing_check():
        fingerprinted.wait(timeout=60)
        time.sleep(0.5)  # publish_release goes on meanwhile, as far as it may
        seen.append(sorted(p.name for p in warehouse_home.published.glob(".incoming-*")))
        raise PublieksdataError("publication blocked by the person-key guard: test")

    def publish_checked(check, **kwargs):
        fingerprinted.clear()
        with ThreadPoolExecutor(1) as pool:
            return publish_release(warehouse_home, checked=pool.submit(check).result, **kwargs)

    conn = duckdb.connect(str(warehouse_home.warehouse))
    conn.execute("delete from published.benchmark where rowid = (select min(rowid) from "
                 "published.benchmark)")  # the content changed: a release would be written  # fmt: skip
    conn.close()
    for only_if_changed in (False, True):
        with pytest.raises(PublieksdataError, match="person-key guard: test"):
            publish_checked(late_failing_check, only_if_changed=only_if_changed)
        assert current_release(warehouse_home) == first.path
        assert list_releases(warehouse_home) == [first.release_id]
        assert not list(warehouse_home.published.glob(".incoming-*"))
    assert seen == [[], []]
    # the ready workers were started, and ended without a job
    assert len(spawned) == 2 and all(worker.returncode == 0 for worker, _ in spawned)
    # an unchanged release is not kept either when the check fails
    kept = publish_release(warehouse_home, only_if_changed=True)
    with pytest.raises(PublieksdataError, match="person-key guard: test"):
        publish_checked(late_failing_check, only_if_changed=True)
    assert current_release(warehouse_home) == kept.path
    passed = publish_checked(lambda: None)
    assert current_release(warehouse_home) == passed.path != kept.path


def test_a_ready_worker_without_a_job_ends_and_writes_nothing():
    from exports.packages import ReadyWorkers

    ready = ReadyWorkers(2)
    workers = [worker for worker, _ in ready._ready]
    assert all(worker.poll() is None for worker in workers)  # waiting for a job
    ready.close()
    assert [worker.returncode for worker in workers] == [0, 0]


def test_a_second_publisher_is_refused_while_one_is_writing(warehouse_home):
    from exports.release import _publication_lock

    with _publication_lock(warehouse_home) as locked:
        assert locked
        with pytest.raises(PublieksdataError, match="another release is being written"):
            publish_release(warehouse_home)


def test_cli_lists_releases(warehouse_home, capsys):
    from publieksdata.cli import main

    assert main(["releases"]) == 0
    assert "no release yet" in capsys.readouterr().out
    rel = publish_release(warehouse_home)
    assert main(["releases"]) == 0
    out = capsys.readouterr().out
    assert rel.release_id in out and "current" in out


def test_the_package_scan_itself_finds_a_planted_name(warehouse_home):
    rel = publish_release(warehouse_home)
    folder = rel.path / "institutions" / "mu_rivier"
    conn = duckdb.connect()
    conn.execute(
        f"copy (select 'th_zuidoost' as x) to '{folder / 'parquet' / 'planted.parquet'}' "
        "(format parquet)"
    )
    conn.close()
    with pytest.raises(AssertionError, match="th_zuidoost"):
        assert_packages_name_no_other_member(rel.path, MEMBERS)


def test_release_ids_of_one_second_keep_their_order_after_pruning(tmp_path, monkeypatch):
    """Regression: with the first releases of a second pruned, a new one must not reuse the
    bare id (it would sort before the ones still there)."""
    from datetime import UTC, datetime

    import exports.release as release_module
    from publieksdata.settings import DataHome

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 11, 22, 0, 41, 43, tzinfo=UTC)

    monkeypatch.setattr(release_module, "datetime", Frozen)
    home = DataHome(tmp_path)
    (tmp_path / "published" / "20261122T004143Z-3").mkdir(parents=True)
    new = release_module._new_release_id(home)
    assert new == "20261122T004143Z-4"
    (tmp_path / "published" / new).mkdir()
    assert list_releases(home) == ["20261122T004143Z-3", "20261122T004143Z-4"]
