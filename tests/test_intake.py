"""Intake: bad files are rejected whole with a readable report; the same bytes count once."""

import json
from pathlib import Path

import duckdb
import pytest
from conftest import deliver, write_minimal_sector

from ingest.intake import canonical_path, take_deliveries
from ingest.sealed import SealedFileSystem, sealed_url
from ingest.standard import CANONICAL_COLUMNS
from privacy.keyring import open_keyring
from privacy.step import pseudonymise_pending
from publieksdata.settings import PublieksdataError

HEADER = "ticket_id,order_id,event_id,event_start,sold_at,price,email,phone,postcode\n"


def tickets_csv(n: int = 20, email_domain: str = "example.nl") -> str:
    rows = [
        f"T{i},O{i},E1,2025-03-01 20:00,2025-02-01 10:00,12.50,visitor{i}@{email_domain},"
        f"06-1234{i:04d},1011 AB\n"
        for i in range(n)
    ]
    return HEADER + "".join(rows)


def warehouse_rows(home) -> int:
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        return conn.execute("select count(*) from pseudo.tickets").fetchone()[0]
    finally:
        conn.close()


def ledger(home) -> list[tuple]:
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        return conn.execute(
            "select file_name, status, duplicate_of from intake.deliveries order by received_at"
        ).fetchall()
    finally:
        conn.close()


def test_missing_required_column_is_rejected_with_a_report_and_loads_nothing(home):
    write_minimal_sector(home)
    content = tickets_csv().replace("price,", "amount,", 1)
    deliver(home, "th_a", "no_price.csv", content)
    outcomes = take_deliveries(home)
    pseudonymise_pending(home)
    assert [o.status for o in outcomes] == ["rejected"]
    assert warehouse_rows(home) == 0
    report = json.loads(next(home.rejected.rglob("*.report.json")).read_text())
    assert report["file"] == "no_price.csv"
    assert report["institution"] == "th_a"
    assert report["problems"][0]["rule"] == "required_column"
    assert report["problems"][0]["column"] == "price"
    markdown = next(home.rejected.rglob("*.report.md")).read_text()
    assert "price" in markdown and "What to do" in markdown
    # the report never repeats a value of the file
    for text in (json.dumps(report), markdown):
        assert "visitor" not in text and "06-1234" not in text
    assert not any(home.landing.rglob("*.csv"))
    assert not [p for p in home.quarantine.rglob("*") if p.is_file()]
    # the rejected original is kept sealed: no plaintext at rest
    [original] = [p for p in home.rejected.rglob("*") if p.is_file() and ".report." not in p.name]
    assert original.read_bytes()[:4] == b"PDQ1"
    assert b"visitor" not in original.read_bytes()


def test_bad_values_are_reported_by_row_and_column_without_values(home):
    write_minimal_sector(home)
    lines = tickets_csv(12).splitlines(keepends=True)
    lines[3] = lines[3].replace("12.50", "-4.00")  # data row 3
    lines[6] = lines[6].replace("2025-03-01 20:00", "31-02-2025")  # data row 6: impossible date
    deliver(home, "th_a", "bad.csv", "".join(lines))
    [outcome] = take_deliveries(home)
    assert outcome.status == "rejected"
    problems = {(p["rule"], p["column"]): p for p in outcome.problems}
    assert problems[("price_range", "price")]["rows"] == [3]
    assert problems[("required_value", "event_start")]["rows"] == [6]
    report = next(home.rejected.rglob("*.report.json")).read_text()
    assert "visitor" not in report and "-4.00" not in report


def test_same_file_twice_counts_once(home):
    write_minimal_sector(home)
    content = tickets_csv(15)
    deliver(home, "th_a", "tickets.csv", content)
    take_deliveries(home)
    pseudonymise_pending(home)
    assert warehouse_rows(home) == 15
    deliver(home, "th_a", "tickets_again.csv", content)
    [outcome] = take_deliveries(home)
    pseudonymise_pending(home)
    assert outcome.status == "duplicate"
    assert warehouse_rows(home) == 15
    statuses = [row[1] for row in ledger(home)]
    assert statuses == ["accepted", "duplicate"]


def test_the_same_bytes_from_two_members_are_two_deliveries(home):
    write_minimal_sector(home)
    content = tickets_csv(15)
    deliver(home, "th_a", "tickets.csv", content)
    deliver(home, "mu_b", "tickets.csv", content)
    deliver(home, "mu_b", "tickets_copy.csv", content)  # the same member twice: a duplicate
    outcomes = sorted((o.institution, o.file_name, o.status) for o in take_deliveries(home))
    assert outcomes == [("mu_b", "tickets.csv", "validated"),
                        ("mu_b", "tickets_copy.csv", "duplicate"),
                        ("th_a", "tickets.csv", "validated")]  # fmt: skip
    pseudonymise_pending(home)
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        per_member = dict(conn.execute(
            "select institution_code, count(*) from pseudo.tickets group by 1").fetchall())  # fmt: skip
    finally:
        conn.close()
    assert per_member == {"th_a": 15, "mu_b": 15}


def test_an_upload_sealed_by_a_run_that_died_before_deleting_it_counts_once(home):
    """A run seals an upload into quarantine and dies before deleting it from landing (its
    threads seal several uploads at once, so a kill can fall there). The next run finds the
    same bytes under the same name in both: one delivery, not a duplicate of itself. The same
    bytes under another name are still a duplicate (test_same_file_twice_counts_once)."""
    from ingest.intake import quarantine_file

    write_minimal_sector(home)
    content = tickets_csv(15)
    upload = deliver(home, "th_a", "tickets.csv", content)
    quarantine_file(home, upload, "th_a", "tickets.csv", open_keyring(home).derive("file"))
    deliver(home, "th_a", "tickets.csv", content)  # the upload the dead run did not delete
    [outcome] = take_deliveries(home)
    pseudonymise_pending(home)
    assert outcome.status == "validated"
    assert ledger(home) == [("tickets.csv", "accepted", None)]
    assert warehouse_rows(home) == 15
    assert not [p for p in home.quarantine.rglob("*") if p.is_file()]
    assert not any(home.landing.rglob("*.csv"))


def test_row_numbers_hold_past_the_first_read_buffers(home):
    """Intake types a delivery as DuckDB parses it, on two threads, into a table whose rowid
    is the row number: problems far into a file (past DuckDB's 32 MB read buffers) are named
    by their own rows, by Great Expectations (a price) and by the whole-file checks (a ticket
    number twice)."""
    write_minimal_sector(home)
    n = 450_000  # ~38 MB
    lines = tickets_csv(n).splitlines(keepends=True)
    for row in (7, n - 3):
        lines[row] = lines[row].replace("12.50", "-4.00")
    lines[n - 1] = lines[n - 1].replace(f"T{n - 2},", "T5,", 1)  # data row n - 1: T5 again
    deliver(home, "th_a", "big.csv", "".join(lines))
    [outcome] = take_deliveries(home)
    problems = {(p["rule"], p["column"]): p["rows"] for p in outcome.problems}
    assert problems == {("price_range", "price"): [7, n - 3],
                        ("duplicate_ticket_id", "ticket_id"): [6, n - 1]}  # fmt: skip


def test_unknown_institution_folder_is_rejected(home):
    write_minimal_sector(home)
    deliver(home, "not_a_member", "tickets.csv", tickets_csv(3))
    [outcome] = take_deliveries(home)
    assert outcome.status == "rejected"
    assert outcome.problems[0]["rule"] == "unknown_institution"


def test_non_data_files_are_rejected_with_a_reason(home):
    write_minimal_sector(home)
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("tickets.csv", tickets_csv(2))
    deliver(home, "th_a", "archive.csv", buf.getvalue())
    deliver(home, "th_a", "empty.csv", b"")
    deliver(home, "th_a", "junk.csv", bytes(range(256)) * 4)
    outcomes = {o.file_name: o for o in take_deliveries(home)}
    assert {o.status for o in outcomes.values()} == {"rejected"}
    assert "zip" in outcomes["archive.csv"].problems[0]["detail"]
    assert "empty" in outcomes["empty.csv"].problems[0]["detail"]
    assert "binary" in outcomes["junk.csv"].problems[0]["detail"]


RAGGED_HEADER = "ticket_id,order_id,event_id,event_start,sold_at,price,email\n"


def _row(i: int) -> str:
    return f"T{i},O{i},E1,2025-05-01 20:00,2025-04-01 10:00,12.50,ragged{i}@example.nl\n"


def test_ragged_rows_are_named_by_row_number_without_their_values(home):
    write_minimal_sector(home)
    # two data rows, the second short: DuckDB's sniffer gives up without naming a line
    deliver(home, "th_a", "tiny.csv", RAGGED_HEADER + _row(1) + "T2,O2,E2,2025-05-01\n")
    # a large file, ragged far past the sniffer's sample; a quoted line break is no new row
    rows = [_row(i) for i in range(1, 60_001)]
    rows[4] = rows[4].replace(",12.50,", ',"12.50\n",', 1).replace("12.50\n", "12,50\n")
    rows[39_999] = rows[39_999].rstrip("\n") + ",extra\n"
    rows[50_000] = rows[50_000].rstrip("\n") + ",extra,more\n"
    deliver(home, "th_a", "large.csv", RAGGED_HEADER + "".join(rows))
    # Windows-1252, with the short row after a byte that is not UTF-8
    latin = RAGGED_HEADER + _row(1).replace("ragged1", "ragged\xe91") + "T2,O2\n" + _row(3)
    deliver(home, "th_a", "latin.csv", latin.encode("latin-1"))
    outcomes = {o.file_name: o for o in take_deliveries(home)}
    found = {name: (o.status, o.problems[0]["rule"], o.problems[0]["count"],
                    o.problems[0]["rows"]) for name, o in outcomes.items()}  # fmt: skip
    assert found == {
        "tiny.csv": ("rejected", "unreadable", 1, [2]),
        "large.csv": ("rejected", "unreadable", 2, [40_000, 50_001]),
        "latin.csv": ("rejected", "unreadable", 1, [2]),
    }
    for outcome in outcomes.values():
        assert "ragged rows" in outcome.problems[0]["detail"]
        report = Path(outcome.report).read_text() + Path(
            outcome.report.replace(".report.json", ".report.md")).read_text()  # fmt: skip
        assert "@example.nl" not in report and "2025-04-01" not in report
    assert not any(home.quarantine.glob("*/*"))


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_an_error_of_our_own_sql_is_raised_not_blamed_on_the_members_file(tmp_path, monkeypatch,
                                                                          encoding):  # fmt: skip
    """A binder error in the SQL that reads a CSV is a defect of ours: it is raised as it is,
    not reported to the member as ragged rows (its text mentions columns), also on the path
    that retries a Windows-1252 file."""
    from ingest import read

    path = tmp_path / "tickets.csv"
    path.write_bytes("ticket_id,price,naam\nT1,12.50,Caf\u00e9\n".encode(encoding))

    def broken(*args, **kwargs):
        raise duckdb.BinderException("table csv_head has 3 columns but 2 values were supplied")

    monkeypatch.setattr(read, "_csv_relation", broken)
    with pytest.raises(duckdb.BinderException):
        read.read_delivery(duckdb.connect(), read.DeliveryFile(path, None))


def test_values_of_the_delivery_standard_are_read_as_members_mean_them(home):
    """Windows-1252's own characters (the euro sign, S and Z with caron), the two-year lead
    time to the day, capacities with Dutch thousands, a decimal point only where the file's
    delimiter is no semicolon, and Dutch forms of address."""
    write_minimal_sector(home)
    utf8 = ("ticket_id,order_id,event_id,event_start,sold_at,price,last_name,birth_date,"
            "postcode,gender\n"
            "U1,O1,E1,2025-03-01 20:00,2025-02-01 10:00,12.50,\u0160imic-\u017du\u017eul,"
            "1970-03-03,2511AB,mevrouw\n")  # fmt: skip
    # an opt-out that is neither yes nor no: on the safe side, an objection
    unclear = ("ticket_id,order_id,event_id,event_start,sold_at,price,email,research_opt_out\n"
               "X1,O5,E1,2025-03-01 20:00,2025-02-01 10:00,5,unclear@example.nl,X\n"
               "X2,O6,E1,2025-03-01 20:00,2025-02-01 10:00,5,clear@example.nl,nee\n")  # fmt: skip
    deliver(home, "th_a", "unclear_opt_out.csv", unclear)
    cp1252 = ("ticketnummer;bestelnummer;voorstelling;event_start;verkoopdatum;prijs;achternaam;"
              "geboortedatum;postcode;geslacht\n"
              "W1;O2;E1;01-03-2025 20:00;01-02-2025 10:00;\u20ac 1.234,50;"
              "\u0160imic-\u017du\u017eul;03-03-1970;2511 AB;meneer\n")  # fmt: skip
    deliver(home, "th_a", "utf8.csv", utf8)
    deliver(home, "mu_b", "windows.csv", cp1252.encode("cp1252"))
    lead = "ticket_id,order_id,event_id,event_start,sold_at,price\n"
    deliver(home, "th_a", "two_years.csv", lead + "L1,O3,E1,2027-06-01,2025-06-01,10\n")
    deliver(home, "th_a", "two_years_and_a_day.csv", lead + "L2,O4,E1,2027-06-01,2025-05-31,10\n")
    # a point with three digits: a decimal point in a ,-file, a thousands group in a ;-file
    deliver(home, "th_a", "point.csv", lead + "P1,O7,E1,2025-03-01,2025-02-01,8.125\n")
    deliver(
        home, "th_a", "comma.csv", lead.replace(",", ";") + "P2;O8;E1;2025-03-01;2025-02-01;8.125\n"
    )
    events = "event_id;starts_at;discipline;capaciteit\n"
    deliver(home, "th_a", "events_thousands.csv", events + "E1;01-03-2025 20:00;theater;1.200\n")
    deliver(home, "th_a", "events_fraction.csv", events + "E2;01-03-2025 20:00;theater;12.7\n")
    outcomes = {o.file_name: o for o in take_deliveries(home)}
    status = {name: o.status for name, o in outcomes.items()}
    assert outcomes["unclear_opt_out.csv"].soft.get("research_opt_out_unknown") == 1
    del status["unclear_opt_out.csv"]
    assert status == {"utf8.csv": "validated", "windows.csv": "validated",
                      "two_years.csv": "validated", "two_years_and_a_day.csv": "rejected",
                      "point.csv": "validated", "comma.csv": "validated",
                      "events_thousands.csv": "validated", "events_fraction.csv": "rejected"}  # fmt: skip
    late = outcomes["two_years_and_a_day.csv"].problems[0]
    assert (late["rule"], late["column"], late["rows"]) == ("lead_time", "sold_at", [1])
    fraction = outcomes["events_fraction.csv"].problems[0]
    assert (fraction["rule"], fraction["column"]) == ("capacity_value", "capacity")
    pseudonymise_pending(home)
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        rows = dict(conn.execute(
            "select ticket_id, (price, gender, sector_head) from pseudo.tickets "
            "where ticket_id in ('U1', 'W1', 'X1', 'X2', 'P1', 'P2')").fetchall())  # fmt: skip
        capacity = conn.execute("select capacity from pseudo.events where event_id = 'E1'")
        [(seats,)] = capacity.fetchall()
    finally:
        conn.close()
    assert (float(rows["U1"][0]), rows["U1"][1]) == (12.5, "v")
    assert (float(rows["W1"][0]), rows["W1"][1]) == (1234.5, "m")
    assert (float(rows["P1"][0]), float(rows["P2"][0])) == (8.13, 8125.0)
    # one person, whichever encoding the member's export used
    assert rows["U1"][2] is not None and rows["U1"][2] == rows["W1"][2]
    assert seats == 1200
    assert rows["X1"][2] is None and rows["X2"][2] is not None


def test_a_number_cell_is_never_read_as_thousands():
    from ingest.read import _cell_text

    assert [_cell_text(v) for v in (8.125, -1.5, 1234.5, 46539.84375, 12.0)] == [
        "8.1250", "-1.5", "1234.5", "46539.84375", "12"]  # fmt: skip


def test_dutch_excel_csv_is_read(home):
    write_minimal_sector(home)
    content = (
        "Ticketnummer;Bestelnummer;Voorstelling;Event_start;Verkoopdatum;Prijs;E-mail;Woonplaats\n"
        "1;10;E1;01-03-2025 20:00;15-01-2025;12,50;anna@example.nl;Zaandam\n"
        "2;10;E1;01-03-2025 20:00;15-01-2025;1.012,00;b\u00e9atrice@example.nl;Li\u00e8ge\n"
    ).encode("cp1252")
    deliver(home, "th_a", "export.csv", content)
    [outcome] = take_deliveries(home)
    assert outcome.status == "validated", outcome.problems
    pseudonymise_pending(home)
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    prices = sorted(
        r[0] for r in conn.execute("select cast(price as double) from pseudo.tickets").fetchall()
    )
    columns = [r[0] for r in conn.execute("describe pseudo.tickets").fetchall()]
    conn.close()
    assert prices == [12.5, 1012.0]
    for identifier in ("email", "phone", "city", "street", "first_name", "last_name", "postcode"):
        assert identifier not in columns


def reading_quarantine(home) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that reads (and writes) the sealed files of the home's quarantine."""
    conn = duckdb.connect()
    conn.register_filesystem(SealedFileSystem(open_keyring(home).derive("file")))
    return conn


def test_a_validated_delivery_keeps_only_what_the_privacy_step_reads(home):
    """The canonical file in quarantine: the standard's columns the privacy step uses, no first
    name (it feeds nothing), no row numbers or check flags."""
    write_minimal_sector(home)
    deliver(home, "th_a", "tickets.csv", (
        b"ticket_id,order_id,event_id,event_start,sold_at,price,email,first_name,last_name\n"
        b"T1,O1,E1,2025-03-01 20:00,2025-02-01 10:00,12.50,anna@example.nl,Anna,Jansen\n"
    ))  # fmt: skip
    [outcome] = take_deliveries(home)
    assert outcome.status == "validated", outcome.problems
    conn, path = reading_quarantine(home), canonical_path(home, "th_a", outcome.delivery_id)
    names = [
        d[0] for d in conn.sql(f"select * from read_parquet('{sealed_url(path)}')").description
    ]
    assert names == list(CANONICAL_COLUMNS["tickets"])
    assert "first_name" not in names and "_row" not in names


def test_a_quarantine_file_that_yields_no_rows_loads_nothing(home):
    """The privacy step reads a group's files in one scan and gives each row its delivery by
    file name: a delivery that ends up with no rows is an error, never a silent loss."""
    write_minimal_sector(home)
    deliver(home, "th_a", "tickets.csv", tickets_csv(5))
    [outcome] = take_deliveries(home)
    conn, path = reading_quarantine(home), canonical_path(home, "th_a", outcome.delivery_id)
    emptied = path.with_name("emptied.parquet")
    conn.execute(
        f"copy (select * from read_parquet('{sealed_url(path)}') limit 0) "
        f"to '{sealed_url(emptied)}' (format parquet)"
    )
    emptied.replace(path)
    with pytest.raises(PublieksdataError, match="read no rows of delivery"):
        pseudonymise_pending(home)
    assert warehouse_rows(home) == 0
    assert [status for _, status, _ in ledger(home)] == ["validated"]


def test_correction_replaces_the_earlier_ticket(home):
    write_minimal_sector(home)
    deliver(home, "th_a", "first.csv", tickets_csv(5))
    take_deliveries(home)
    pseudonymise_pending(home)
    correction = HEADER.replace("\n", ",status\n") + (
        "T1,O1,E1,2025-03-01 20:00,2025-02-01 10:00,12.50,visitor1@example.nl,,1011 AB,geannuleerd\n"
    )
    deliver(home, "th_a", "correction.csv", correction)
    take_deliveries(home)
    pseudonymise_pending(home)
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    rows = conn.execute(
        "select ticket_id, status from pseudo.tickets order by ticket_id"
    ).fetchall()
    conn.close()
    assert len(rows) == 5
    assert dict(rows)["T1"] == "cancelled"


def test_rejected_files_are_purged_after_the_retention_period(home):
    import os
    import time

    from ingest.retention import purge_rejected

    write_minimal_sector(home)
    deliver(home, "th_a", "bad.csv", "no,header,that,fits\n1,2,3,4\n")
    take_deliveries(home)
    files = [p for p in home.rejected.rglob("*") if p.is_file()]
    assert len(files) == 3  # sealed original, report.json, report.md
    assert purge_rejected(home, days=30) == 0
    old = time.time() - 31 * 86_400
    for p in files:
        os.utime(p, (old, old))
    assert purge_rejected(home, days=30) == 3
    assert not [p for p in home.rejected.rglob("*") if p.is_file()]


def test_private_folders_are_0700_and_ge_never_sees_identifiers(home):
    from ingest.standard import IDENTIFIER_COLUMNS
    from ingest.validate import _ge_frame_sql

    write_minimal_sector(home)
    deliver(home, "th_a", "bad.csv", tickets_csv(3).replace("price", "amount"))
    take_deliveries(home)
    for folder in [home.quarantine, home.rejected, home.keys, *home.rejected.iterdir()]:
        assert oct(folder.stat().st_mode & 0o777) == "0o700", folder
    for kind in ("tickets", "events"):
        import re

        words = set(re.findall(r"[a-z_]+", _ge_frame_sql(kind, "typed").split(" from ")[0]))
        assert not words & IDENTIFIER_COLUMNS, kind


def test_deliveries_validated_together_keep_their_own_problems_and_row_numbers(home, monkeypatch):
    """Great Expectations sees many small deliveries in one validation (ingest/intake.py,
    _Batches); each delivery still gets exactly its own problems, counts and row numbers."""
    import ingest.validate

    monkeypatch.setattr(ingest.validate, "CHUNK_ROWS", 7)  # chunks that cut across files
    write_minimal_sector(home)
    good = tickets_csv(12)
    lines = tickets_csv(12).splitlines(keepends=True)
    lines[3] = lines[3].replace("12.50", "99999")  # row 3: price out of range
    lines[9] = lines[9].replace("12.50", "-1")  # row 9 too
    lines[5] = lines[5].replace("2025-03-01 20:00", "")  # row 5: no event date
    deliver(home, "th_a", "a_good.csv", good)
    deliver(home, "th_a", "b_bad.csv", "".join(lines))
    deliver(home, "mu_b", "c_good.csv", good.replace("T", "M"))
    deliver(home, "mu_b", "d_same_bytes.csv", good.replace("T", "M"))  # the same bytes again
    outcomes = {o.file_name: o for o in take_deliveries(home)}
    assert {n: o.status for n, o in outcomes.items()} == {
        "a_good.csv": "validated",
        "b_bad.csv": "rejected",
        "c_good.csv": "validated",
        "d_same_bytes.csv": "duplicate",
    }
    problems = {(p["rule"], p["column"]): (p["count"], p["rows"])
                for p in outcomes["b_bad.csv"].problems}  # fmt: skip
    assert problems == {
        ("price_range", "price"): (2, [3, 9]),
        ("required_value", "event_start"): (1, [5]),
    }
    pseudonymise_pending(home)
    assert warehouse_rows(home) == 24


@pytest.mark.parametrize("per_group", [None, 1], ids=["one group", "a group per delivery"])
def test_a_ticket_delivered_twice_in_one_night_keeps_the_later_row(home, monkeypatch, per_group):
    """The privacy step pseudonymises a night's deliveries in groups (privacy/step.py): within
    a group, as across groups, the later delivery of a ticket_id replaces the earlier one."""
    import privacy.step

    if per_group:
        monkeypatch.setattr(privacy.step, "GROUP_DELIVERIES", per_group)
    write_minimal_sector(home)
    deliver(home, "th_a", "a_sales.csv", tickets_csv(4))
    correction = tickets_csv(2).replace("12.50", "15.00")  # T0 and T1 again, new price
    deliver(home, "th_a", "b_correction.csv", correction)
    deliver(home, "mu_b", "c_other_member.csv", tickets_csv(1))  # its own T0
    take_deliveries(home)
    assert len(pseudonymise_pending(home)) == 3
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        rows = conn.execute(
            "select institution_code, ticket_id, price from pseudo.tickets order by 1, 2"
        ).fetchall()
        loaded = conn.execute(
            "select file_name, rows_loaded from intake.deliveries order by file_name"
        ).fetchall()
    finally:
        conn.close()
    assert [(i, t, float(p)) for i, t, p in rows] == [
        ("mu_b", "T0", 12.5),
        ("th_a", "T0", 15.0), ("th_a", "T1", 15.0), ("th_a", "T2", 12.5), ("th_a", "T3", 12.5),
    ]  # fmt: skip
    assert loaded == [("a_sales.csv", 4), ("b_correction.csv", 2), ("c_other_member.csv", 1)]


def test_of_two_uploads_in_one_night_the_later_one_wins_whatever_their_names(home):
    """delivery-standard.md: a later delivery with the same ticket_id replaces the earlier row.
    Within one night "later" is the upload's time (its modification time), not its name: a
    correction uploaded after the sales file wins even when its name sorts first."""
    import os

    write_minimal_sector(home)
    sales = deliver(home, "th_a", "z_sales.csv", tickets_csv(3))
    correction = deliver(home, "th_a", "a_correction.csv",
                         tickets_csv(1).replace("12.50", "15.00"))  # T0 again, new price  # fmt: skip
    os.utime(sales, ns=(1_700_000_000_000_000_000,) * 2)
    os.utime(correction, ns=(1_700_000_060_000_000_000,) * 2)  # a minute later
    take_deliveries(home)
    pseudonymise_pending(home)
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        prices = dict(conn.execute("select ticket_id, price from pseudo.tickets").fetchall())
        taken = [r[0] for r in conn.execute(
            "select file_name from intake.deliveries order by delivery_id").fetchall()]  # fmt: skip
    finally:
        conn.close()
    assert taken == ["z_sales.csv", "a_correction.csv"]
    assert float(prices["T0"]) == 15.0 and float(prices["T1"]) == 12.5


def test_a_streamed_insert_writes_what_the_general_path_writes(home, monkeypatch):
    """Most groups go into the warehouse as their join streams (no one of the group on the
    suppression list, no ticket twice; privacy/step.py). The general path keeps the keyed rows
    in memory first: from the same quarantine both must write the same rows and ledger."""
    import shutil

    import privacy.step as step
    from publieksdata.synthetic import generate_sector

    generate_sector(home.root, institutions=3, persons=300, years=1, seed=3)
    take_deliveries(home)
    saved = home.root.parent / "saved"
    shutil.copytree(home.quarantine, saved / "quarantine")
    shutil.copy2(home.warehouse, saved / "warehouse.duckdb")
    touched = step._touches_suppression_list

    def result(general: bool):
        seen = []

        def spy(conn):
            seen.append(touched(conn))
            return general or seen[-1]

        monkeypatch.setattr(step, "_touches_suppression_list", spy)
        pseudonymise_pending(home)
        assert seen and not any(seen)  # nobody erased: the choice was the monkeypatch's
        conn = duckdb.connect(str(home.warehouse), read_only=True)
        try:
            rows = conn.execute("select * exclude (loaded_at) from pseudo.tickets order by all")
            names = [d[0] for d in rows.description]
            return (
                [dict(zip(names, r, strict=True)) for r in rows.fetchall()],
                conn.execute(
                    "select delivery_id, status, rows_loaded, soft_problems from intake.deliveries "
                    "order by all"
                ).fetchall(),
                conn.execute(  # the persons' pseudonyms, each once, with record keys
                    "select * from pseudo.person_record_keys order by all"
                ).fetchall(),
            )
        finally:
            conn.close()

    streamed = result(general=False)
    shutil.rmtree(home.quarantine)
    shutil.copytree(saved / "quarantine", home.quarantine)
    shutil.copy2(saved / "warehouse.duckdb", home.warehouse)
    general = result(general=True)
    tickets, deliveries, persons = streamed
    assert len(tickets) > 300 and {d[1] for d in deliveries} == {"accepted"}
    # rows without a person too
    assert [t for t in tickets if t["sector_head"] is None and not t["research_opt_out"]]
    assert len(persons) > 100 and all(record_key is not None for _, record_key, _ in persons)
    assert streamed == general


def test_a_group_with_a_new_person_whose_pseudonym_is_not_found_loads_nothing(home, monkeypatch):
    """Every head a group brings in must have its pseudonym stored with it (rotation re-keys
    from it); if the step stored fewer than the group's new persons, the group is not
    committed: no ticket, no person key, the deliveries still waiting."""
    import privacy.step as step
    from publieksdata.synthetic import generate_sector

    generate_sector(home.root, institutions=2, persons=50, years=1, seed=5)
    take_deliveries(home)
    real = step.add_person_keys
    monkeypatch.setattr(step, "add_person_keys", lambda *a: real(*a) - 1)
    with pytest.raises(PublieksdataError, match="report this defect"):
        pseudonymise_pending(home)
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        assert conn.execute("select count(*) from pseudo.tickets").fetchone() == (0,)
        assert conn.execute("select count(*) from pseudo.person_record_keys").fetchone() == (0,)
        assert "accepted" not in {s for (s,) in conn.execute(  # events go in groups of their own
            "select status from intake.deliveries where kind = 'tickets'").fetchall()}  # fmt: skip
    finally:
        conn.close()
    monkeypatch.setattr(step, "add_person_keys", real)
    pseudonymise_pending(home)  # the next run loads them
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        assert conn.execute("select count(*) from pseudo.tickets").fetchone()[0] > 50
    finally:
        conn.close()


def test_lines_before_the_header_are_skipped_where_the_sniffer_skips_them(tmp_path):
    """A CSV is sniffed once and its reads are told what the sniffer found (ingest/read.py):
    also the lines it skips before the header (a title line, a blank or a # line), so the
    header is never read as a ticket."""
    from ingest.read import DeliveryFile, read_delivery

    for first in ("Export van 12-03-2025\n", "\n", "# export\n", ""):
        for delimiter in (",", ";"):  # the delimiter is the header's, not the title's
            path = tmp_path / "t.csv"
            path.write_bytes(
                f"{first}ticket_id{delimiter}price\nT1{delimiter}12.50\nT2{delimiter}3\n".encode()
            )
            conn = duckdb.connect()
            read = read_delivery(conn, DeliveryFile(path, None))
            assert (read.columns, read.delimiter) == (["ticket_id", "price"], delimiter), first
            assert conn.execute("select * from raw").fetchall() == [("T1", "12.50"), ("T2", "3")]
            conn.close()


def test_excels_sep_line_names_the_delimiter_and_is_skipped(tmp_path):
    """Excel's "sep=;" first line (written so that Excel opens the file with the right
    delimiter): the delimiter it names is the file's, the header is the line after it, and a
    ragged row is named by its data row as in any file."""
    from ingest.read import DeliveryFile, UnreadableFile, read_delivery

    path = tmp_path / "t.csv"
    for hint in ("sep=;", "SEP=;", "sep=; "):
        path.write_bytes(f"{hint}\r\nticket_id;price\r\nT1;12,50\r\nT2;3\r\n".encode())
        conn = duckdb.connect()
        read = read_delivery(conn, DeliveryFile(path, None))
        assert (read.columns, read.delimiter) == (["ticket_id", "price"], ";"), hint
        assert conn.execute("select * from raw").fetchall() == [("T1", "12,50"), ("T2", "3")]
        conn.close()
    for first in ("sep=;\n", "Export maart\n"):  # a title line too
        path.write_bytes(f"{first}ticket_id;price\nT1;12,50\nT2;3;x\nT3;4\n".encode())
        with pytest.raises(UnreadableFile) as raised:
            read_delivery(duckdb.connect(), DeliveryFile(path, None))
        assert raised.value.rows == [2] and "ragged" in str(raised.value), first


def test_xlsx_cells_become_the_text_a_csv_would_hold(tmp_path):
    """Every kind of cell calamine hands over, blank rows skipped with the order kept; a cell
    beyond the header (calamine pads every row to the sheet's width) is a column without a
    name, left out like an unknown column."""
    import datetime as dt

    from openpyxl import Workbook

    from ingest.read import DeliveryFile, read_delivery

    wb = Workbook()
    ws = wb.active
    ws.append(["ticket_id", "price", "sold_at", "birth_date", "time", "opt_out", "note"])
    when, born = dt.datetime(2025, 2, 1, 10, 30), dt.date(1980, 5, 6)
    ws.append(["T1", 12.0, when, born, dt.time(20, 15), True, "  a  "])
    ws.append([None] * 7)  # a blank row between data rows
    ws.append(["T2", 12.5, "2025-02-01", None, None, False, ""])
    ws.append([7, 0.1, None, None, None, None, "x"])
    path = tmp_path / "t.xlsx"
    wb.save(path)
    conn = duckdb.connect()
    result = read_delivery(conn, DeliveryFile(path))
    assert result.rows == 3
    rows = conn.execute("select * from raw order by rowid").fetchall()
    assert [d[0] for d in conn.description] == ["ticket_id", "price", "sold_at", "birth_date",
                                                "time", "opt_out", "note"]  # fmt: skip
    assert rows == [
        ("T1", "12", "2025-02-01 10:30:00", "1980-05-06", "20:15:00", "true", "a"),
        ("T2", "12.5", "2025-02-01", None, None, "false", None),
        ("7", "0.1", None, None, None, None, "x"),
    ]

    ws.cell(row=6, column=9, value="beyond the header")
    wb.save(path)
    result = read_delivery(conn, DeliveryFile(path))
    assert result.columns == ["ticket_id", "price", "sold_at", "birth_date", "time", "opt_out",
                              "note"]  # fmt: skip
    assert result.rows == 4
    assert conn.execute("select count(*) from raw where ticket_id is null").fetchone()[0] == 1


def test_a_typed_parquet_delivery_types_as_its_csv_would(tmp_path):
    """Parquet columns whose type fits (timestamps, a date, numbers, a boolean) are taken as
    they are, not formatted as text and parsed back; the typed table equals the one the same
    values give as CSV text. Where they differ the typed column is right: a price of 1.234
    as text reads as one thousand two hundred and thirty-four (a Dutch thousands
    separator). An infinite timestamp is unparseable, and a time-zoned one goes through its text
    (2025-02-01 09:00:00+00), which names a moment: 10:00 in Amsterdam that day."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    from ingest.read import DeliveryFile, read_delivery
    from ingest.typed import detect_date_formats, typed_tickets_sql

    when = [dt.datetime(2025, 3, 1, 20, 0), dt.datetime(2025, 3, 2, 14, 30, 15), None]
    sold = [dt.datetime(2025, 2, 1, 9, 0), None, dt.datetime(2025, 1, 5, 11, 0)]
    born = [dt.date(1980, 5, 6), None, dt.date(2001, 12, 31)]
    columns = {
        "ticket_id": pa.array(["T1", "T2", "T3"]), "order_id": pa.array(["O1", "O1", "O2"]),
        "event_id": pa.array(["E1", "E2", "E2"]),
        "event_start": pa.array(when, pa.timestamp("ms")), "sold_at": pa.array(sold, pa.timestamp("us")),
        "price": pa.array([12.5, 0.0, None]), "birth_date": pa.array(born, pa.date32()),
        "research_opt_out": pa.array([True, False, None]),
        "postcode": pa.array([" 1011 AB", None, "9401ZW"]),
    }  # fmt: skip
    pq.write_table(pa.table(columns), tmp_path / "t.parquet")
    text = ["ticket_id,order_id,event_id,event_start,sold_at,price,birth_date,research_opt_out,"
            "postcode",
            "T1,O1,E1,2025-03-01 20:00:00,2025-02-01 09:00:00,12.50,1980-05-06,true, 1011 AB",
            "T2,O1,E2,2025-03-02 14:30:15,,0,,false,",
            "T3,O2,E2,,2025-01-05 11:00:00,,2001-12-31,,9401ZW"]  # fmt: skip
    (tmp_path / "t.csv").write_text("\n".join(text) + "\n")

    def typed(name: str) -> tuple[frozenset, list]:
        conn = duckdb.connect()
        read = read_delivery(conn, DeliveryFile(tmp_path / name))
        formats = detect_date_formats(conn, "tickets", [c for c in read.columns
                                                         if c not in read.native])  # fmt: skip
        conn.execute(typed_tickets_sql(read.columns, formats, "typed", read.native))
        return read.native, conn.execute(
            "select rowid + 1 as _row, * from typed order by rowid"
        ).fetchall()

    native, from_parquet = typed("t.parquet")
    assert native == {"event_start", "sold_at", "price", "birth_date", "research_opt_out"}
    assert typed("t.csv") == (frozenset(), from_parquet)
    assert from_parquet[0][4] == dt.datetime(2025, 3, 1, 20, 0)  # event_start, typed

    odd = {
        "ticket_id": pa.array(["T1", "T2"]), "order_id": pa.array(["O1", "O1"]),
        "event_id": pa.array(["E1", "E1"]), "price": pa.array([1.234, 7.0]),
        "sold_at": pa.array([dt.datetime(2025, 2, 1, 9)] * 2, pa.timestamp("us", tz="UTC")),
    }  # fmt: skip
    pq.write_table(pa.table(odd), tmp_path / "odd.parquet")
    conn = duckdb.connect()
    conn.execute(f"copy (select 'T3' as ticket_id, 'O1' as order_id, 'E1' as event_id, "
                 f"timestamp 'infinity' as event_start) to '{tmp_path / 'inf.parquet'}' "
                 "(format parquet)")  # fmt: skip
    native, rows = typed("odd.parquet")
    assert native == {"price"}  # the zoned timestamp is read as text
    assert [(r[1], float(r[8])) for r in rows] == [("T1", 1.23), ("T2", 7.0)]
    assert [r[6] for r in rows] == [dt.datetime(2025, 2, 1, 10, 0)] * 2  # sold_at, in Amsterdam
    native, [row] = typed("inf.parquet")
    assert native == {"event_start"} and row[4] is None and row[5]  # given, unparseable


def test_great_expectations_keeps_its_info_lines_to_itself(caplog):
    """A GE context logs a temporary docs folder at INFO each time; the console of a run and
    Dagster's logs show GE's warnings and errors only."""
    import logging
    from datetime import date

    from ingest import validate

    conn = duckdb.connect()
    conn.execute(
        "create table t as select 1 as _row, 'x' as ticket_id, 'o' as order_id, 'e' as event_id, "
        "timestamp '2025-03-01' as event_start, timestamp '2025-02-01' as sold_at, "
        "12.5 as price, 'sold' as status"
    )
    validate._ge_batch_definition_and_suite.cache_clear()
    with caplog.at_level(logging.INFO):
        assert validate.run_expectations(conn, "tickets", ["t"], date(2025, 6, 1)) == [[]]
    assert not [r for r in caplog.records if r.name.startswith("great_expectations")
                and r.levelno < logging.WARNING]  # fmt: skip


def test_great_expectations_does_not_fingerprint_the_frames_it_validates(monkeypatch):
    """GE hashes every row of a pandas batch for a fingerprint nothing reads (60% of its
    time per frame, docs/performance.md): turned off, so no frame of a delivery is hashed."""
    from datetime import date

    import pandas as pd

    from ingest import validate

    def hashed(*args, **kwargs):
        raise AssertionError("a validated frame was fingerprinted")

    monkeypatch.setattr(pd.util, "hash_pandas_object", hashed)
    conn = duckdb.connect()
    conn.execute(
        "create table t as select i as _row, 'x' || i as ticket_id, 'o' as order_id, "
        "'e' as event_id, timestamp '2025-03-01' as event_start, "
        "timestamp '2025-02-01' as sold_at, 12.5 as price, 'sold' as status "
        "from range(1, 1001) r(i)"
    )
    validate._ge_batch_definition_and_suite.cache_clear()
    assert validate.run_expectations(conn, "tickets", ["t"], date(2025, 6, 1)) == [[]]


def test_great_expectations_sees_event_dates_to_the_day():
    """The event-date rule's bounds hold to the day: 1 January 1990 is accepted, 31 December
    1989 is not, and the last day of the horizon three years on is accepted, the next one not
    (GE compares yyyymmdd integers computed in DuckDB)."""
    from datetime import date

    from ingest.validate import run_expectations

    conn = duckdb.connect()
    conn.execute(
        "create table typed_1 as select *, 10.0 as price, 'sold' as status from (values "
        "(1, 'T1', 'O1', 'E1', timestamp '1990-01-01 00:00:00', timestamp '1989-12-01 10:00:00'),"
        "(2, 'T2', 'O1', 'E1', timestamp '1989-12-31 23:59:59', timestamp '1989-12-01 10:00:00'),"
        "(3, 'T3', 'O1', 'E1', timestamp '2029-06-15 20:00:00', timestamp '2028-06-01 10:00:00'),"
        "(4, 'T4', 'O1', 'E1', timestamp '2029-06-16 00:00:00', timestamp '2028-06-01 10:00:00')"
        ") as t(_row, ticket_id, order_id, event_id, event_start, sold_at)"
    )
    [problems] = run_expectations(conn, "tickets", ["typed_1"], date(2026, 6, 15))
    found = {(p.rule, p.column): sorted(p.rows) for p in problems}
    assert found == {("event_start_range", "event_start"): [2, 4]}


def test_date_format_hint_comes_from_given_values():
    """The format tried first per date column is the one most of the column's first given
    values have: a column empty in the leading rows (birth dates are optional) still gets its
    hint, and a format seen once loses to the one most values use. Only a hint: a value in
    another format of the standard is typed all the same."""
    import duckdb

    from ingest.typed import _SAMPLE, detect_date_formats, typed_tickets_sql

    conn = duckdb.connect()
    lead = 3 * _SAMPLE  # rows before the first birth date: more than a sample of rows
    conn.execute(
        "create temp table raw as select 'T' || i as ticket_id, 'E1' as event_id, "
        "case when i = 0 then '2025-03-01 20:00' else '01-03-2025 20:00' end as event_start, "
        "'2025-02-01' as sold_at, '12,50' as price, "
        f"case when i >= {lead} then '06-05-1980' end as birth_date "
        f"from range({lead + 10}) t(i)"
    )
    columns = ["ticket_id", "event_id", "event_start", "sold_at", "price", "birth_date"]
    assert detect_date_formats(conn, "tickets", columns) == {
        "event_start": "%d-%m-%Y %H:%M", "sold_at": "%Y-%m-%d", "birth_date": "%d-%m-%Y",
    }  # fmt: skip
    assert detect_date_formats(conn, "tickets", ["ticket_id", "event_id"]) == {}
    conn.execute(typed_tickets_sql(columns, detect_date_formats(conn, "tickets", columns)))
    assert conn.execute(
        "select count(event_start), min(event_start)::varchar, count(birth_date) from typed"
    ).fetchone() == (lead + 10, "2025-03-01 20:00:00", 10)
