"""The whole job on a generated sector, in-process, on a temporary data home."""

import datetime as dt
import json

import duckdb
import pytest
from conftest import deliver, isolated_home
from privacy_scan import find_identifiers

from exports.release import current_release, verify_release
from publieksdata.pipeline import run_job
from publieksdata.synthetic import generate_sector

K = 10

# Canary identifiers: unusual enough that any hit in a written file is a leak.
CANARY = {
    "email": "Kanarie.Vogelzang@Example.org",
    "phone": "06-19283746",
    "first_name": "Zebediah",
    "last_name": "Quixwoldt",
    "street": "Kanariepietersteeg",
    "postcode": "3511 QX",
    "city": "Quixhuizen",
    "birth_date": "1937-04-29",
}


# A second person who appears only in a delivery that is rejected: nothing of them may survive
# outside the rejected original, which intake seals (AES-GCM) in rejected/.
CANARY_REJECTED = {
    "email": "Verworpen.Kwikstaart@Example.net",
    "phone": "+31 6 3746 5829",
    "first_name": "Ottoline",
    "last_name": "Brummelkampquist",
    "street": "Verworpenhofje",
    "postcode": "3512 QZ",
    "city": "Kwikdorp",
    "birth_date": "1941-11-03",
}


def _variants(canary: dict) -> tuple[list[str], list[str]]:
    """(values as they may be written, normalised forms that a naive hash would be taken of)."""
    from privacy.normalise import fallback_identity, normalise_email, normalise_phone

    email = normalise_email(canary["email"])
    phone = normalise_phone(canary["phone"])
    fallback = fallback_identity(canary["last_name"], canary["birth_date"], canary["postcode"])
    pc6 = canary["postcode"].replace(" ", "")
    year, month, day = canary["birth_date"].split("-")
    values = (
        [
            canary[k]
            for k in ("email", "phone", "first_name", "last_name", "street", "city", "birth_date")
        ]
        + [  # fmt: skip
            email,
            phone,
            phone.lstrip("+"),
            "0" + phone[3:],
            pc6,
            canary["postcode"],
            f"{day}-{month}-{year}",
        ]
    )
    hashed = [email, canary["email"], phone, phone.lstrip("+"), "0" + phone[3:], fallback,
              f"email:{email}", f"phone:{phone}", f"fallback:{fallback}"]  # fmt: skip
    return values, hashed


def canary_needles(canaries=(CANARY, CANARY_REJECTED)) -> list[str]:
    """The canaries' values, and unkeyed SHA-256 / SHA-1 / MD5 of their identifiers."""
    import hashlib

    needles = []
    for canary in canaries:
        values, hashed = _variants(canary)
        needles += values
        for v in hashed:
            for algorithm in (hashlib.sha256, hashlib.sha1, hashlib.md5):
                needles += [
                    algorithm(v.encode()).hexdigest(),
                    algorithm(v.lower().encode()).hexdigest(),
                ]
    return sorted(set(needles))


@pytest.fixture(scope="module")
def finished_job(tmp_path_factory):
    """One generated sector, one run of the whole job: shared by the assertions below."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("e2e") / "home"
    home = isolated_home(root, mp, b"\x07")
    generate_sector(root, institutions=10, persons=2500, years=2, seed=11)
    truth = json.loads((root / "synthetic" / "truth.json").read_text())
    # a member of our own with canary identifiers in twelve tickets
    with home.registry.open("a") as fh:
        fh.write("canary_podium,Canary Podium,theater,3511,\n")
    rows = "".join(
        f"C{i},CO{i},CE1,{truth['years'][-1]}-03-01 20:00,{truth['years'][-1]}-02-01 10:00,15.00,"
        f"{CANARY['email']},{CANARY['phone']},{CANARY['first_name']},{CANARY['last_name']},"
        f"{CANARY['street']},12,{CANARY['postcode']},{CANARY['city']},{CANARY['birth_date']}\n"
        for i in range(12)
    )
    deliver(home, "canary_podium", "canary.csv",
            "ticket_id,order_id,event_id,event_start,sold_at,price,email,phone,first_name,"
            "last_name,street,house_number,postcode,city,birth_date\n" + rows)  # fmt: skip
    # the second canary, in a delivery that is rejected (a negative price in one row)
    year = truth["years"][-1]
    bad_rows = "".join(
        f"R{i},RO{i},CE1,{year}-03-02 20:00,{year}-02-02 10:00,{'-5.00' if i == 3 else '15.00'},"
        f"{CANARY_REJECTED['email']},{CANARY_REJECTED['phone']},{CANARY_REJECTED['first_name']},"
        f"{CANARY_REJECTED['last_name']},{CANARY_REJECTED['street']},7,"
        f"{CANARY_REJECTED['postcode']},{CANARY_REJECTED['city']},{CANARY_REJECTED['birth_date']}\n"
        for i in range(6)
    )
    deliver(home, "canary_podium", "canary_rejected.csv",
            "ticket_id,order_id,event_id,event_start,sold_at,price,email,phone,first_name,"
            "last_name,street,house_number,postcode,city,birth_date\n" + bad_rows)  # fmt: skip
    # soft problems that do not reject a file (delivery-standard.md): an e-mail address that does
    # not parse, an unknown ticket type twice, a column outside the standard; and the canary
    # file again under another name (the same bytes: a duplicate, counted once)
    deliver(home, "canary_podium", "canary_soft.csv",
            "ticket_id,order_id,event_id,event_start,sold_at,price,email,ticket_type,loyalty_tier\n"
            f"S1,SO1,CE1,{year}-03-03 20:00,{year}-02-03 10:00,12.50,not-an-address,vip,gold\n"
            f"S2,SO2,CE1,{year}-03-03 20:00,{year}-02-03 10:00,12.50,,vip,gold\n"
            f"S3,SO3,CE1,{year}-03-03 20:00,{year}-02-03 10:00,12.50,,regulier,\n")  # fmt: skip
    deliver(home, "canary_podium", "canary_zz_again.csv",
            (home.landing / "canary_podium" / "canary.csv").read_bytes())  # fmt: skip
    # whatever Great Expectations (or anything else) puts in the temp folder stays where we look
    import tempfile

    scratch = root.parent / "tmp"
    scratch.mkdir()
    mp.setattr(tempfile, "tempdir", str(scratch))
    summary = run_job(home)
    yield home, truth, summary
    mp.undo()


def release_conn(home):
    rel = current_release(home)
    assert rel is not None
    return duckdb.connect(str(rel / "marts.duckdb"), read_only=True)


def test_release_is_complete_and_verified(finished_job):
    home, truth, summary = finished_job
    rel = current_release(home)
    manifest = verify_release(rel)
    assert manifest["k"] == K
    assert manifest["open_years_perturbed"] is True
    assert "benchmark" in manifest["tables"]
    assert (rel / "parquet" / "benchmark.parquet").is_file()
    assert summary["deliveries"].get("rejected", 0) == 1  # the planted canary_rejected.csv
    assert not [p for p in home.quarantine.rglob("*") if p.is_file()]


def test_benchmark_has_a_row_for_every_institution_and_year(finished_job):
    home, truth, _ = finished_job
    conn = release_conn(home)
    got = {
        (c, y) for c, y in conn.execute("select institution_code, year from benchmark").fetchall()
    }
    expected = {
        (code, int(year))
        for code, inst in truth["institutions"].items()
        for year, values in inst["years"].items()
        if values["tickets"] > 0
    }
    assert expected <= got


def test_counts_match_the_generated_truth(finished_job):
    home, truth, _ = finished_job
    conn = release_conn(home)
    rows = conn.execute(
        "select institution_code, year, tickets, revenue, n_persons from benchmark"
    ).fetchall()
    checked = 0
    for code, year, tickets, revenue, n_persons in rows:
        if code not in truth["institutions"]:
            continue
        want = truth["institutions"][code]["years"][str(year)]
        assert tickets == want["tickets"], (code, year)
        assert float(revenue) == pytest.approx(want["revenue"], abs=0.01), (code, year)
        if want["n_persons"] >= K and dt.date.today() >= dt.date(year + 1, 2, 1):
            assert n_persons == want["n_persons"], (code, year)  # a closed year: exact
            checked += 1
        elif want["n_persons"] >= K:  # an open year: perturbed by at most 2, never below k
            assert abs(n_persons - want["n_persons"]) <= 2 and n_persons >= K, (code, year)
            checked += 1
        elif want["n_persons"] > 0:
            assert n_persons is None
    assert checked > 0


def test_no_published_cell_has_fewer_than_k_persons(finished_job):
    home, _, _ = finished_job
    conn = release_conn(home)
    for (table,) in conn.execute("show tables").fetchall():
        cols = [r[0] for r in conn.execute(f"describe {table}").fetchall()]
        if "n_persons" in cols:
            assert "suppressed" in cols
            bad = conn.execute(
                f"select count(*) from {table} where n_persons > 0 and n_persons < {K}"
            ).fetchone()[0]
            assert bad == 0, table
    # the canary member has one person: that person is never shown
    row = conn.execute(
        "select n_persons, suppressed from benchmark where institution_code = 'canary_podium'"
    ).fetchone()
    assert row == (None, True)


def test_no_identifier_column_in_warehouse_or_release(finished_job):
    home, _, _ = finished_job
    forbidden = {"email", "phone", "first_name", "last_name", "street", "house_number",
                 "postcode", "city", "birth_date", "customer_id"}  # fmt: skip
    for path in [home.warehouse, current_release(home) / "marts.duckdb"]:
        conn = duckdb.connect(str(path), read_only=True)
        cols = {r[0] for r in conn.execute("select column_name from duckdb_columns()").fetchall()}
        conn.close()
        assert not cols & forbidden, path


def test_no_identifier_value_anywhere_the_job_wrote(finished_job):
    home, _, _ = finished_job
    scanned: list[str] = []
    hits = find_identifiers(home.root, canary_needles(), skip=("landing",), scanned=scanned)
    assert hits == []

    # the scan reached every place a value could escape to
    def covered(prefix, suffix=""):
        return any(s.startswith(prefix) and s.endswith(suffix) for s in scanned)

    assert covered("warehouse.duckdb") and covered("published/", "marts.duckdb")
    assert covered("rejected/canary_podium/", ".report.json")
    assert covered("rejected/canary_podium/", ".report.md")
    assert covered("rejected/canary_podium/", "canary_rejected.csv")  # the original, sealed
    assert covered("dagster/history/runs/", ".db")  # run and event log storage
    assert covered("dagster/storage/")  # compute logs
    assert covered("dbt/target/", "manifest.json") and covered("dbt/target/", "run_results.json")
    assert covered("dbt/", "dbt.log")
    # the canary's visits did arrive: the scan looked at real rows
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    n = conn.execute(
        "select count(*) from pseudo.tickets where institution_code = 'canary_podium' "
        "and sector_head is not null"
    ).fetchone()[0]
    conn.close()
    assert n == 12


def test_rejected_original_is_sealed_and_its_report_names_no_value(finished_job):
    """Rejected originals are not excluded from the scan: they are encrypted at rest."""
    from ingest.sealed import is_sealed

    home, _, _ = finished_job
    originals = [p for p in (home.rejected / "canary_podium").iterdir()
                 if p.name.endswith("canary_rejected.csv")]  # fmt: skip
    assert len(originals) == 1 and is_sealed(originals[0])
    report = json.loads(
        next((home.rejected / "canary_podium").glob("*canary_rejected.csv.report.json")).read_text()
    )
    assert [p["column"] for p in report["problems"]] == ["price"]


def test_nothing_left_in_the_temp_folder_names_a_canary(finished_job):
    home, _, _ = finished_job
    scratch = home.root.parent / "tmp"
    assert find_identifiers(scratch, canary_needles()) == []


def test_the_identifier_scan_finds_a_planted_value(tmp_path):
    """The scan itself must be able to fail: plant a value in each kind of file it reads."""
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    conn.execute("create schema s; create table s.t as select 'x' as a, 'Quixwoldt' as b")
    conn.execute(f"copy s.t to '{tmp_path / 't.parquet'}' (format parquet)")
    conn.close()
    (tmp_path / "log.txt").write_text("... quixwoldt ...")
    import gzip
    import sqlite3

    (tmp_path / "log.gz").write_bytes(gzip.compress(b"... Quixwoldt ..."))
    lite = sqlite3.connect(tmp_path / "events.db")
    lite.execute("create table event_logs (event text)")
    lite.execute("insert into event_logs values (?)", ["x" * 9000 + '{"name": "Quixwoldt"}'])
    lite.commit()
    lite.close()
    hits = find_identifiers(tmp_path, ["Quixwoldt"])
    assert hits == ["events.db", "log.gz", "log.txt", "t.parquet", "w.duckdb:s.t"]


def test_canary_needles_hold_unkeyed_hashes():
    import hashlib

    needles = canary_needles()
    assert hashlib.sha256(b"kanarie.vogelzang@example.org").hexdigest() in needles
    assert hashlib.md5(b"+31619283746").hexdigest() in needles
    assert hashlib.sha256(b"email:verworpen.kwikstaart@example.net").hexdigest() in needles


def _package_csv(home, code: str, table: str) -> list[dict]:
    import csv

    path = current_release(home) / "institutions" / code / "csv" / f"{table}.csv"
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_member_sees_its_own_deliveries_and_their_soft_problems(finished_job):
    """delivery-standard.md: soft problems are counted in the delivery report. Each member's
    package lists its own files (deliveries.csv, and section 4 of report.html): accepted with
    the soft problems counted, rejected with the rules broken, duplicates counted once."""
    home, _, _ = finished_job
    rows = _package_csv(home, "canary_podium", "deliveries")
    assert {r["institution_code"] for r in rows} == {"canary_podium"}
    statuses = sorted(r["status"] for r in rows)
    assert statuses == ["accepted", "accepted", "duplicate", "rejected"]
    soft = next(r for r in rows if r["status"] == "accepted" and r["rows_total"] == "3")
    assert (soft["email_unparseable"], soft["ticket_type_unknown"], soft["unknown_columns"]) == (
        "1", "2", "1"
    )  # fmt: skip
    assert soft["rows_loaded"] == "3" and soft["channel_unknown"] == "0"
    first = next(r for r in rows if r["status"] == "accepted" and r["rows_total"] == "12")
    assert all(first[c] == "0" for c in ("email_unparseable", "ticket_type_unknown"))
    again = next(r for r in rows if r["status"] == "duplicate")
    assert again["duplicate_of"] == first["delivery_id"] and again["sha256"] == first["sha256"]
    assert again["rows_loaded"] == "0"
    rejected = next(r for r in rows if r["status"] == "rejected")
    assert rejected["rejected_for"] == "price_range (price)" and rejected["rows_loaded"] == "0"
    assert rejected["email_unparseable"] == ""  # soft counts only for accepted files
    # no file names, no header text of the member's file, no values
    text = (
        current_release(home) / "institutions" / "canary_podium" / "csv" / "deliveries.csv"
    ).read_text()
    for needle in ("canary_soft", "loyalty_tier", "not-an-address", "vip"):
        assert needle not in text
    # the other members do not see them
    others = [p.name for p in (current_release(home) / "institutions").iterdir()
              if p.name != "canary_podium"]  # fmt: skip
    assert others
    for code in others:
        assert {r["institution_code"] for r in _package_csv(home, code, "deliveries")} <= {code}
    report = (current_release(home) / "institutions" / "canary_podium" / "report.html").read_text()
    assert "4. Uw leveringen" in report
    assert "afgekeurd om: price_range (price)" in report
    assert "1 onleesbare e-mailadressen; 2 onbekend kaarttype" in report
    assert "al eerder geleverd (" + first["delivery_id"] + ")" in report


def test_a_night_with_only_a_rejected_file_publishes_a_release_that_lists_it(finished_job):
    """The deliveries table is published, so the release's content fingerprint covers it: a
    night whose only file is rejected loads nothing but still gives the member a new release
    that says so. (Last in this module: it runs the job again on the shared data home.)"""
    home, _, _ = finished_job
    before = current_release(home)
    with release_conn(home) as conn:
        benchmark = conn.execute("select * from benchmark order by all").fetchall()
    deliver(home, "canary_podium", "late_night.csv", "ticket_id,order_id\nX1,XO1\n")
    # and an upload into a folder that is no member's (rejected, unknown_institution): its
    # folder name is not a member, so no package lists it (as a code, the word would be taken
    # for another member's name in every package, and the release refused)
    deliver(home, "accepted", "tickets.csv", "ticket_id,order_id\nX1,XO1\n")
    run_job(home)
    after = current_release(home)
    assert after.name != before.name
    assert not (after / "institutions" / "accepted").exists()
    with release_conn(home) as conn:
        assert conn.execute(
            "select count(*) from deliveries where institution_code = 'accepted'"
        ).fetchone() == (0,)
    rows = _package_csv(home, "canary_podium", "deliveries")
    assert sorted(r["status"] for r in rows) == [
        "accepted",
        "accepted",
        "duplicate",
        "rejected",
        "rejected",
    ]
    assert any(r["rejected_for"].startswith("required_column") for r in rows)
    with release_conn(home) as conn:
        assert conn.execute("select * from benchmark order by all").fetchall() == benchmark
