"""Intake reads several deliveries at once (PUBLIEKSDATA_INTAKE_WORKERS, ingest/intake.py):
the outcome does not depend on the number of workers, equal bytes in one run count once
whichever worker would read them, and a worker that fails stops intake without losing or
half-recording a delivery."""

import duckdb
import pytest
from conftest import deliver, write_minimal_sector
from test_intake import tickets_csv

import ingest.intake
from ingest.intake import take_deliveries
from privacy.step import pseudonymise_pending

GOOD_ROWS = {"a0.csv": 30, "a1.csv": 31, "a2.csv": 32, "a3.csv": 33, "b0.csv": 34}
EXPECTED = {
    "a0.csv": "validated", "a1.csv": "validated", "a2.csv": "validated", "a3.csv": "validated",
    "a4_copy_of_a0.csv": "duplicate",
    "b0.csv": "validated",
    "b1_bad_price.csv": "rejected",
    "b2_copy_of_b1.csv": "rejected",  # a copy of a rejected file is read, and rejected, itself
    "b3_no_price.csv": "rejected",
    "c.csv": "rejected",  # not a member
}  # fmt: skip
# landing order: folders by name, then files in upload order (a_night writes them by name)
ORDER = ["b0.csv", "b1_bad_price.csv", "b2_copy_of_b1.csv", "b3_no_price.csv",
         "a0.csv", "a1.csv", "a2.csv", "a3.csv", "a4_copy_of_a0.csv", "c.csv"]  # fmt: skip


def a_night(home) -> None:
    write_minimal_sector(home)
    for i in range(4):
        deliver(home, "th_a", f"a{i}.csv", tickets_csv(30 + i).replace("T", f"A{i}-"))
    deliver(home, "th_a", "a4_copy_of_a0.csv", tickets_csv(30).replace("T", "A0-"))
    deliver(home, "mu_b", "b0.csv", tickets_csv(34).replace("T", "B0-"))
    bad = tickets_csv(12).replace("T", "B1-").splitlines(keepends=True)
    bad[2] = bad[2].replace("12.50", "99999")  # row 2: price out of range
    deliver(home, "mu_b", "b1_bad_price.csv", "".join(bad))
    deliver(home, "mu_b", "b2_copy_of_b1.csv", "".join(bad))
    deliver(home, "mu_b", "b3_no_price.csv", tickets_csv(5).replace("price,", "amount,", 1))
    deliver(home, "zz_other", "c.csv", tickets_csv(3))


def ledger(home) -> dict[str, tuple]:
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        rows = conn.execute(
            "select file_name, delivery_id, status, duplicate_of, rows_loaded "
            "from intake.deliveries"
        ).fetchall()
    finally:
        conn.close()
    return {
        name: (delivery_id, status, dup, loaded) for name, delivery_id, status, dup, loaded in rows
    }


def tickets(home) -> list[tuple]:
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        return conn.execute(
            "select institution_code, ticket_id, price, pc4 from pseudo.tickets order by all"
        ).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("workers", [1, 3])
def test_the_outcome_does_not_depend_on_the_number_of_workers(home, monkeypatch, workers):
    monkeypatch.setenv("PUBLIEKSDATA_INTAKE_WORKERS", str(workers))
    monkeypatch.setattr(ingest.intake._Batches, "GROUP_FILES", 2)  # several groups per worker
    a_night(home)
    outcomes = take_deliveries(home)
    assert [o.file_name for o in outcomes] == ORDER  # in landing order, whoever read them
    assert {o.file_name: o.status for o in outcomes} == EXPECTED
    by_name = {o.file_name: o for o in outcomes}
    for bad in ("b1_bad_price.csv", "b2_copy_of_b1.csv"):
        assert [(p["rule"], p["column"], p["count"], p["rows"]) for p in by_name[bad].problems
                ] == [("price_range", "price", 1, [2])]  # fmt: skip
    assert by_name["b3_no_price.csv"].problems[0]["rule"] == "required_column"
    assert by_name["c.csv"].problems[0]["rule"] == "unknown_institution"
    assert {n: o.rows for n, o in by_name.items() if o.status == "validated"} == GOOD_ROWS
    pseudonymise_pending(home)
    recorded = ledger(home)
    assert recorded["a4_copy_of_a0.csv"][2] == recorded["a0.csv"][0]  # the copy names the first
    assert {n: r[1] for n, r in recorded.items()} == {
        n: "accepted" if s == "validated" else s for n, s in EXPECTED.items()
    }
    rows = tickets(home)
    assert len(rows) == sum(GOOD_ROWS.values())
    assert {(i, t.split("-")[0]) for i, t, _, _ in rows} == {
        ("th_a", "A0"),
        ("th_a", "A1"),
        ("th_a", "A2"),
        ("th_a", "A3"),
        ("mu_b", "B0"),
    }
    assert not [p for p in home.quarantine.rglob("*") if p.is_file()]


def test_a_failing_worker_stops_intake_and_the_next_run_finishes(home, monkeypatch):
    """One worker fails on one delivery: intake raises that error, records nothing for that
    delivery, keeps its sealed original in quarantine; the others record whole deliveries
    only. The next run ends as if nothing had happened."""
    monkeypatch.setenv("PUBLIEKSDATA_INTAKE_WORKERS", "3")
    a_night(home)
    read = ingest.intake.read_delivery

    def failing_read(conn, source, load):
        if source.path.name.endswith("__a2.csv"):
            raise RuntimeError("the disk went away")
        return read(conn, source, load)

    with monkeypatch.context() as patch:
        patch.setattr(ingest.intake, "read_delivery", failing_read)
        with pytest.raises(RuntimeError, match="the disk went away"):
            take_deliveries(home)
    recorded = ledger(home)
    assert "a2.csv" not in recorded
    assert all(r[1] in ("validated", "rejected", "duplicate") for r in recorded.values())
    waiting = [p.name.split("__", 1)[1] for p in home.quarantine.rglob("*__*")]
    assert "a2.csv" in waiting
    # every delivery is either recorded whole or still sealed in quarantine, never both
    assert sorted(waiting + list(recorded)) == sorted(EXPECTED)
    assert not any(p.is_file() for p in home.landing.rglob("*"))
    take_deliveries(home)
    pseudonymise_pending(home)
    assert {n: r[1] for n, r in ledger(home).items()} == {
        n: "accepted" if s == "validated" else s for n, s in EXPECTED.items()
    }
    assert len(tickets(home)) == sum(GOOD_ROWS.values())
    assert not [p for p in home.quarantine.rglob("*") if p.is_file()]
