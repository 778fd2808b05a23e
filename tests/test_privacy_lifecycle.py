"""Rotation and erasure through the whole job: dbt rebuilds, releases republish.

One small generated sector plus a member of our own with twelve known persons, then, each
followed by the whole job: ``keys rotate``; a second delivery of the same twelve persons;
``erase`` of one of them while a third delivery that brings that person again waits.
"""

import contextlib
import io
import json

import duckdb
import pytest
from conftest import TICKETS_WITH_PSEUDONYMS as TICKETS
from conftest import deliver, heads_out_of_step, isolated_home
from privacy_scan import find_identifiers

from exports.release import current_release
from publieksdata import cli
from publieksdata.pipeline import run_job
from publieksdata.synthetic import generate_sector

MEMBER = "lifecycle_zaal"
HEADER = "ticket_id,order_id,event_id,event_start,sold_at,price,customer_id,email\n"
ERASED = "L0@Lifecycle.Example"


def visits(year: int, prefix: str, email_case=str.lower, customer=True, persons=range(12)) -> str:
    return HEADER + "".join(
        f"{prefix}{i},{prefix}O{i},LE1,{year}-04-01 20:00,{year}-03-01 10:00,20.00,"
        f"{f'K{i}' if customer else ''},{email_case(f'L{i}@Lifecycle.Example')}\n"
        for i in persons
    )


def benchmark(home) -> list[tuple]:
    conn = duckdb.connect(str(current_release(home) / "marts.duckdb"), read_only=True)
    try:
        return conn.execute("select * from benchmark order by institution_code, year").fetchall()
    finally:
        conn.close()


def member_row(home, year) -> tuple:
    conn = duckdb.connect(str(current_release(home) / "marts.duckdb"), read_only=True)
    try:
        return conn.execute(
            "select tickets, n_persons from benchmark where institution_code = ? and year = ?",
            [MEMBER, year],
        ).fetchone()
    finally:
        conn.close()


def warehouse(home, sql, params=()):
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        return conn.execute(sql, list(params)).fetchall()
    finally:
        conn.close()


def heads(home) -> tuple[int, int]:
    """(rows with a head, rows whose head is out of step with their pseudonym)."""
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        [(n,)] = conn.execute("select count(sector_head) from pseudo.tickets").fetchall()
        return n, heads_out_of_step(conn)
    finally:
        conn.close()


def command(argv) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue() + err.getvalue()


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("lifecycle") / "home"
    home = isolated_home(root, mp, b"\x09")
    generate_sector(root, institutions=4, persons=600, years=2, seed=5)
    year = json.loads((root / "synthetic" / "truth.json").read_text())["years"][-1]
    # the year closed (published exactly): the numbers below are the persons themselves, not
    # the open-year perturbation of docs/metrics.md
    mp.setenv("PUBLIEKSDATA_AS_OF_DATE", f"{year + 1}-06-01")
    with home.registry.open("a") as fh:
        fh.write(f"{MEMBER},Lifecycle Zaal,theater,3511,\n")
    deliver(home, MEMBER, "first.csv", visits(year, "A"))
    seen: dict = {"year": year}

    run_job(home)
    seen["benchmark_0"] = benchmark(home)
    seen["release_0"] = current_release(home).name
    seen["pseudonyms_0"] = {r[0] for r in warehouse(home, "select sector_pseudonym from "
                                                   f"{TICKETS} where sector_pseudonym is not null")}  # fmt: skip

    seen["rotate"] = command(["keys", "rotate"])
    seen["heads_1"] = heads(home)
    seen["benchmark_1"] = benchmark(home)
    seen["release_1"] = current_release(home).name
    seen["pseudonyms_1"] = {r[0] for r in warehouse(home, "select sector_pseudonym from "
                                                   f"{TICKETS} where sector_pseudonym is not null")}  # fmt: skip

    # the same twelve persons again after the rotation: upper-case e-mails, no customer number
    deliver(home, MEMBER, "second.csv", visits(year, "B", str.upper, customer=False))
    run_job(home)
    seen["member_2"] = member_row(home, year)

    erased_pseudonym = warehouse(
        home,
        f"select distinct sector_pseudonym from {TICKETS} where institution_code = ? "
        "and ticket_id = 'A0'",
        [MEMBER],
    )[0][0]
    seen["erased_pseudonym"] = erased_pseudonym
    # waiting in landing while the erasure runs: the person again, by e-mail and by customer
    # number only; the erasure's own run takes it in after the person is on the list
    deliver(home, MEMBER, "third.csv", visits(year, "C", persons=[0]) + "D0,DO0,LE1,"
            f"{year}-05-01 20:00,{year}-04-01 10:00,20.00,K0,\n")  # fmt: skip
    seen["erase"] = command(["erase", "--email", ERASED])
    seen["heads_3"] = heads(home)
    seen["member_3"] = member_row(home, year)
    seen["release_3"] = current_release(home).name
    seen["erasure_log"] = warehouse(home, "select * from meta.erasure_log")
    seen["scan_3"] = find_identifiers(
        home.root, [ERASED, ERASED.lower(), erased_pseudonym], skip=("landing",)
    )
    seen["fct_erased"] = warehouse(
        home,
        "select count(*) from marts.fct_tickets where person_key = cast('0x' || left(?, 32) as "
        "uhugeint)",
        [erased_pseudonym],
    )[0][0]
    seen["third"] = warehouse(
        home,
        "select count(*) filter (where sector_head is null and customer_head is null) "
        "from pseudo.tickets where institution_code = ? and ticket_id in ('C0', 'D0')",
        [MEMBER],
    )[0][0]
    yield home, seen
    mp.undo()


def test_rotation_keeps_every_published_number(lifecycle):
    home, seen = lifecycle
    code, text = seen["rotate"]
    assert code == 0 and "every link kept" in text
    assert seen["release_1"] != seen["release_0"]  # rebuilt and republished
    assert seen["benchmark_1"] == seen["benchmark_0"]
    assert seen["pseudonyms_1"] and not seen["pseudonyms_1"] & seen["pseudonyms_0"]
    # the heads dbt reads moved with the pseudonyms (the numbers above could not show a head
    # left behind: every head would still be one person's)
    with_head, out_of_step = seen["heads_1"]
    assert with_head > 0 and out_of_step == 0


def test_a_delivery_after_rotation_links_to_the_persons_history(lifecycle):
    _, seen = lifecycle
    assert seen["member_2"] == (24, 12)  # 24 tickets, still twelve persons


def test_erase_removes_the_person_from_every_count_but_keeps_the_tickets(lifecycle):
    _, seen = lifecycle
    code, text = seen["erase"]
    assert code == 0
    assert seen["member_3"] == (26, 11)  # two more tickets (third.csv), not one more person
    assert seen["release_3"] != seen["release_1"]
    [log] = seen["erasure_log"]
    assert log[2] == "email" and log[5] == 2 and log[7] == seen["release_3"]


def test_erase_never_echoes_the_identifier_and_leaves_it_nowhere(lifecycle):
    _, seen = lifecycle
    _, text = seen["erase"]
    assert "lifecycle.example" not in text.lower() and seen["erased_pseudonym"] not in text
    assert seen["scan_3"] == ["warehouse.duckdb:meta.erased"]
    assert seen["erased_pseudonym"] not in json.dumps(seen["erasure_log"], default=str)


def test_a_new_delivery_does_not_bring_the_erased_person_back(lifecycle):
    _, seen = lifecycle
    assert seen["third"] == 2  # by e-mail and by the customer number alone: both unlinked
    assert seen["fct_erased"] == 0
    assert seen["heads_3"][1] == 0  # the erased rows lost their heads with their pseudonyms
