"""The single pass (privacy/step.py, ``take_and_pseudonymise``): intake's workers validate and
the privacy step pseudonymises from the work database, with no canonical file in between.
It ends as intake and the privacy step run one after the other; deliveries are loaded in the
order they were taken whichever worker read them; a failure before a group's commit loses
nothing and the next run finishes."""

import os

import duckdb
import pytest
from conftest import deliver
from test_intake import tickets_csv
from test_intake_workers import EXPECTED, GOOD_ROWS, ORDER, a_night, ledger, tickets

import ingest.intake
import privacy.step
from privacy.step import take_and_pseudonymise

EVENTS = "event_id,starts_at,discipline,event_name\nE1,2025-03-01 20:00,theater,Avond\n"


def no_canonical_file(*_args):
    raise AssertionError("the single pass wrote a canonical hand-over file")


@pytest.mark.parametrize("workers", [1, 3])
def test_the_single_pass_ends_as_intake_and_the_privacy_step_do(home, monkeypatch, workers):
    """The night of test_intake_workers.py, in groups of about two deliveries (an events
    delivery among them): the same outcomes, ledger and rows as the two steps, every
    delivery accepted with intake's soft counts kept, nothing left in quarantine."""
    monkeypatch.setenv("PUBLIEKSDATA_INTAKE_WORKERS", str(workers))
    monkeypatch.setattr(ingest.intake._Batches, "GROUP_FILES", 2)
    monkeypatch.setattr(privacy.step, "GROUP_ROWS", 70)
    monkeypatch.setattr(ingest.intake, "canonical_path", no_canonical_file)
    a_night(home)
    events = deliver(home, "th_a", "a2_events.csv", EVENTS)
    # uploaded a second after th_a's other files (a clock tick can hold several writes: a tie
    # would fall back to the name)
    last = max(p.stat().st_mtime_ns for p in events.parent.iterdir())
    os.utime(events, ns=(last + 1_000_000_000,) * 2)
    outcomes, loaded = take_and_pseudonymise(home)
    # uploaded last of th_a's files: taken after them (landing order is upload order)
    order = ORDER[:9] + ["a2_events.csv"] + ORDER[9:]
    assert [o.file_name for o in outcomes] == order
    assert {o.file_name: o.status for o in outcomes} == {**EXPECTED, "a2_events.csv": "validated"}
    assert {o.delivery_id for o in loaded} == {
        o.delivery_id for o in outcomes if o.status == "validated"
    }
    assert {o.delivery_id: o.rows for o in loaded if o.kind == "tickets"} == {
        o.delivery_id: GOOD_ROWS[o.file_name] for o in outcomes if o.file_name in GOOD_ROWS
    }
    recorded = ledger(home)
    assert recorded["a4_copy_of_a0.csv"][2] == recorded["a0.csv"][0]
    assert {n: r[1] for n, r in recorded.items()} == {
        **{n: "accepted" if s == "validated" else s for n, s in EXPECTED.items()},
        "a2_events.csv": "accepted",
    }
    assert {n: r[3] for n, r in recorded.items() if n in GOOD_ROWS} == GOOD_ROWS
    rows = tickets(home)
    assert len(rows) == sum(GOOD_ROWS.values())
    assert {(i, t.split("-")[0]) for i, t, _, _ in rows} == {
        ("th_a", "A0"), ("th_a", "A1"), ("th_a", "A2"), ("th_a", "A3"), ("mu_b", "B0"),
    }  # fmt: skip
    with duckdb.connect(str(home.warehouse), read_only=True) as conn:
        assert conn.execute("select count(*) from pseudo.events").fetchone() == (1,)
        # every ticket row has its pseudonyms: the e-mail addresses were keyed
        assert conn.execute(
            "select count(*) from pseudo.tickets where sector_head is null or sector_head "
            "not in (select person_head from pseudo.person_record_keys)"
        ).fetchone() == (0,)
    assert not [p for p in home.quarantine.rglob("*") if p.is_file()]


@pytest.mark.parametrize("group_rows", [5, 100_000], ids=["own groups", "one group"])
def test_a_ticket_in_two_files_of_one_night_keeps_the_later_files_row(
    home, monkeypatch, group_rows
):
    """a0.csv (3,000 rows, 12.50) is taken before a1.csv (10 of the same tickets, 20.00) but
    takes longer to read: its worker finishes last. The later file's row wins all the same,
    in one group or in two."""
    monkeypatch.setenv("PUBLIEKSDATA_INTAKE_WORKERS", "2")
    monkeypatch.setattr(privacy.step, "GROUP_ROWS", group_rows)
    from conftest import write_minimal_sector

    write_minimal_sector(home)
    deliver(home, "th_a", "a0.csv", tickets_csv(3000))
    deliver(home, "th_a", "a1.csv", tickets_csv(10).replace("12.50", "20.00"))
    outcomes, _ = take_and_pseudonymise(home)
    assert [o.status for o in outcomes] == ["validated", "validated"]
    rows = {t: float(p) for _, t, p, _ in tickets(home)}
    assert len(rows) == 3000
    assert {t: p for t, p in rows.items() if p == 20.0} == {f"T{i}": 20.0 for i in range(10)}


def test_a_failure_before_a_groups_commit_loses_nothing(home, monkeypatch):
    """The privacy step fails on the second group (and would on any after it): the first
    group's deliveries are accepted and gone from quarantine; the rest are in neither the
    ledger nor the warehouse, their sealed originals still in quarantine; no worker tries the
    failed group again; the next run ends as an uninterrupted one."""
    monkeypatch.setenv("PUBLIEKSDATA_INTAKE_WORKERS", "2")
    monkeypatch.setattr(privacy.step, "GROUP_ROWS", 70)
    a_night(home)
    real = privacy.step._pseudonymise_tickets
    groups = []

    def second_group_fails(conn, keyring):
        groups.append(1)
        if len(groups) >= 2:
            raise RuntimeError("the disk went away")
        return real(conn, keyring)

    with monkeypatch.context() as patch:
        patch.setattr(privacy.step, "_pseudonymise_tickets", second_group_fails)
        with pytest.raises(RuntimeError, match="the disk went away"):
            take_and_pseudonymise(home)
    assert len(groups) == 2  # the failed group is not tried again by another worker
    recorded = ledger(home)
    accepted = {n for n, r in recorded.items() if r[1] == "accepted"}
    assert accepted and accepted < set(GOOD_ROWS)
    assert {n: r[3] for n, r in recorded.items() if n in accepted} == {
        n: GOOD_ROWS[n] for n in accepted
    }
    assert len(tickets(home)) == sum(GOOD_ROWS[n] for n in accepted)
    waiting = {p.name.split("__", 1)[1] for p in home.quarantine.rglob("*__*")}
    assert not waiting & accepted
    assert set(GOOD_ROWS) - accepted <= waiting
    take_and_pseudonymise(home)
    assert {n: r[1] for n, r in ledger(home).items()} == {
        n: "accepted" if s == "validated" else s for n, s in EXPECTED.items()
    }
    assert len(tickets(home)) == sum(GOOD_ROWS.values())
    assert not [p for p in home.quarantine.rglob("*") if p.is_file()]


def test_a_group_whose_load_failed_is_not_loaded_again(home, monkeypatch):
    """Once a load failed, a delivery settled by another worker (which flushes what it holds
    before it stops) does not start the failed group again; ``close`` says the read failed."""
    from pathlib import Path

    from ingest.intake import Validated
    from privacy.keyring import open_keyring
    from publieksdata.settings import PublieksdataError
    from publieksdata.warehouse import work_connection

    loads = []

    def failing_load(self, group):
        loads.append([v.order for v in group])
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(privacy.step.SinglePass, "_load", failing_load)
    monkeypatch.setattr(privacy.step, "GROUP_ROWS", 10)

    def validated(order):
        return Validated(order, {}, "tickets", f"typed_{order}", 10, {}, Path("x"))

    with work_connection(home) as conn:
        loader = privacy.step.SinglePass(conn, open_keyring(home), [0, 1, 2])
        loader.settle(0, validated(0))  # a group of its own: the next delivery may join it
        with pytest.raises(RuntimeError, match="the disk went away"):
            loader.settle(1, validated(1))  # completes the first group, whose load fails
        loader.settle(2, validated(2))  # another worker's: nothing is tried again
        with pytest.raises(PublieksdataError, match="failed on a group"):
            loader.close()
    assert loads == [[0]]


@pytest.mark.parametrize(
    ("min_rows", "expected"),
    [(20, [[0, 1, 2], [3, 4]]), (1_000, [[0, 1, 2, 3, 4]])],
    ids=["loaded when due", "waits to be full"],
)
def test_a_group_is_loaded_as_soon_as_it_holds_the_minimum(home, monkeypatch, min_rows, expected):
    """A free loader does not wait for a group to be full (GROUP_ROWS): as soon as the read's
    next validated deliveries hold GROUP_MIN_ROWS rows, they are loaded, and the deliveries
    validated after them go in the next group. Never out of the read's order: a delivery
    validated before the one ahead of it waits for it."""
    from pathlib import Path

    from ingest.intake import Validated
    from privacy.keyring import open_keyring
    from publieksdata.warehouse import work_connection

    loads = []
    monkeypatch.setattr(privacy.step.SinglePass, "_load",
                        lambda self, group: loads.append([v.order for v in group]))  # fmt: skip
    monkeypatch.setattr(privacy.step, "GROUP_ROWS", 100)
    monkeypatch.setattr(privacy.step, "GROUP_MIN_ROWS", min_rows)

    def validated(order):
        return Validated(order, {}, "tickets", f"typed_{order}", 10, {}, Path("x"))

    with work_connection(home) as conn:
        loader = privacy.step.SinglePass(conn, open_keyring(home), [0, 1, 2, 3, 4])
        loader.settle(0, validated(0))  # 10 rows: may still grow
        assert loads == []
        loader.settle(2, validated(2))  # after 1, which is not validated yet: waits
        assert loads == []
        loader.settle(1, validated(1))  # 0, 1 and 2: 30 rows
        assert loads == (expected[:1] if min_rows <= 30 else [])
        loader.settle(3, validated(3))
        loader.settle(4, validated(4))  # the read's last delivery
        loader.close()
    assert loads == expected


def test_uploads_sealed_at_once_keep_their_landing_order_in_quarantine(home, monkeypatch):
    """An interrupted run's originals are read back in name order: a1.csv, sealed first
    because a0.csv takes longer, still gets the later delivery id, so that after a crash the
    later file's rows still win."""
    import time

    from conftest import write_minimal_sector

    from privacy.keyring import open_keyring
    from publieksdata.warehouse import work_connection

    monkeypatch.setenv("PUBLIEKSDATA_INTAKE_WORKERS", "2")
    seal = ingest.intake.seal_file

    def slow_first(upload, target, key):
        if upload.name == "a0.csv":
            time.sleep(0.3)
        return seal(upload, target, key)

    monkeypatch.setattr(ingest.intake, "seal_file", slow_first)
    write_minimal_sector(home)
    deliver(home, "th_a", "a0.csv", tickets_csv(30))
    deliver(home, "th_a", "a1.csv", tickets_csv(10))
    file_key = open_keyring(home).derive("file")
    with work_connection(home, file_key) as conn:
        items = list(ingest.intake._sealed_items(conn, home, file_key, None))
    assert [i.file_name for i in items] == ["a0.csv", "a1.csv"]
    names = sorted(p.name for p in (home.quarantine / "th_a").iterdir())
    assert [n.split("__", 1)[1] for n in names] == ["a0.csv", "a1.csv"]


def test_reading_starts_while_later_uploads_are_still_being_sealed(home, monkeypatch):
    """The workers take an upload as soon as it (and every upload before it) is sealed, so
    reading the first deliveries overlaps sealing the rest (docs/performance.md, twenty-second
    round). The last upload's sealing waits until the first delivery is being read: with
    sealing done before reading, it would wait in vain. Great Expectations is warmed up on a
    thread of its own meanwhile, and every delivery still ends as it would."""
    import threading

    from conftest import write_minimal_sector

    import ingest.validate

    monkeypatch.setenv("PUBLIEKSDATA_INTAKE_WORKERS", "2")
    first_read = threading.Event()
    waited: list[bool] = []
    seal, prepare = ingest.intake.seal_file, ingest.intake._prepare

    def seal_last_after_first_read(upload, target, key):
        if upload.name == "a2.csv":
            waited.append(first_read.wait(timeout=20))
        return seal(upload, target, key)

    def prepare_noting(conn, home_, item, *args, **kwargs):
        first_read.set()
        return prepare(conn, home_, item, *args, **kwargs)

    suites = ingest.validate._ge_batch_definition_and_suite
    built_on: list[str] = []

    def suite_noting(kind, today):
        built_on.append(threading.current_thread().name)
        return suites(kind, today)

    monkeypatch.setattr(ingest.intake, "seal_file", seal_last_after_first_read)
    monkeypatch.setattr(ingest.intake, "_prepare", prepare_noting)
    monkeypatch.setattr(ingest.validate, "_ge_batch_definition_and_suite", suite_noting)
    write_minimal_sector(home)
    for n in range(3):
        deliver(home, "th_a", f"a{n}.csv", tickets_csv(10).replace("T", f"T{n}_"))
    outcomes, loaded = take_and_pseudonymise(home)
    assert waited == [True]
    assert [(o.file_name, o.status) for o in outcomes] == [
        ("a0.csv", "validated"), ("a1.csv", "validated"), ("a2.csv", "validated")]  # fmt: skip
    assert len(loaded) == 3 and len(tickets(home)) == 30
    assert built_on[:2] == ["ge_warm_up", "ge_warm_up"]  # both suites, before any worker's
    assert not [p for p in home.quarantine.rglob("*") if p.is_file()]


def test_deliveries_an_older_version_left_validated_are_loaded_first(home, monkeypatch):
    """A canonical file waiting from before the single pass (the hand-over path) is older
    than tonight's uploads: of a ticket in both, tonight's row wins."""
    from conftest import write_minimal_sector

    from ingest.intake import take_deliveries

    write_minimal_sector(home)
    deliver(home, "th_a", "a0.csv", tickets_csv(10))
    assert [o.status for o in take_deliveries(home)] == ["validated"]  # waits as a file
    deliver(home, "th_a", "a1.csv", tickets_csv(10).replace("12.50", "20.00"))
    outcomes, loaded = take_and_pseudonymise(home)
    assert [o.file_name for o in outcomes] == ["a1.csv"]
    assert len(loaded) == 2
    assert {float(p) for _, _, p, _ in tickets(home)} == {20.0}
    assert {r[1] for r in ledger(home).values()} == {"accepted"}
    assert not [p for p in home.quarantine.rglob("*") if p.is_file()]


def test_a_large_group_is_stored_in_full_row_groups(home, monkeypatch):
    """Six deliveries of 50,000 tickets, one group: pseudo.tickets holds them in three row
    groups (DuckDB's 122,880 rows each), as a sorted insert appends them. An insert that
    streams the join on two threads leaves part-filled row groups, which the next checkpoint
    merges by rewriting them (7-15 s at 10M, docs/performance.md, nineteenth round)."""
    from conftest import write_minimal_sector

    monkeypatch.setenv("PUBLIEKSDATA_INTAKE_WORKERS", "2")
    write_minimal_sector(home)
    csv = tickets_csv(50_000)
    for n in range(6):
        deliver(home, "th_a", f"a{n}.csv", csv.replace("\nT", f"\nF{n}T"))
    real_connect = duckdb.connect

    def two_threads(database=":memory:", *args, config=None, **kwargs):
        # the insert is parallel on any machine with more than one core; here on every one
        return real_connect(database, *args, config={**(config or {}), "threads": 2}, **kwargs)

    monkeypatch.setattr(duckdb, "connect", two_threads)
    stored = []  # (rows, row groups) after each load, before any checkpoint could merge them
    real_load = privacy.step.SinglePass._load

    def load(self, group):
        real_load(self, group)
        stored.append(self.conn.execute(
            "select count(*), (select count(distinct row_group_id) "
            "from pragma_storage_info('wh.pseudo.tickets')) from wh.pseudo.tickets"
        ).fetchone())  # fmt: skip

    monkeypatch.setattr(privacy.step.SinglePass, "_load", load)
    outcomes, _ = take_and_pseudonymise(home)
    assert [o.status for o in outcomes] == ["validated"] * 6
    assert stored == [(300_000, 3)]  # ceil(300,000 / 122,880) row groups


def test_each_group_is_written_into_the_warehouse_file_as_it_is_loaded(home, monkeypatch):
    """After each group's load its rows are in the warehouse file, not only in its write-ahead
    log: the night's checkpoint is not left whole to the end of the read (privacy/step.py)."""
    from conftest import write_minimal_sector

    monkeypatch.setattr(privacy.step, "GROUP_MIN_ROWS", 1)  # a group per delivery, at once
    write_minimal_sector(home)
    deliver(home, "th_a", "a0.csv", tickets_csv(30))
    deliver(home, "th_a", "a1.csv", tickets_csv(10))
    wal = home.warehouse.with_name(home.warehouse.name + ".wal")
    real, logged = privacy.step.SinglePass._load, []

    def load_and_look(self, group):
        real(self, group)
        logged.append(wal.stat().st_size if wal.exists() else 0)

    monkeypatch.setattr(privacy.step.SinglePass, "_load", load_and_look)
    outcomes, loaded = privacy.step.take_and_pseudonymise(home)
    assert [o.status for o in outcomes] == ["validated", "validated"]
    assert sum(o.rows for o in loaded) == 40
    assert logged == [0] * len(logged) and len(logged) >= 1
