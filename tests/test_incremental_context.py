"""Incremental models whose rows depend on more than an institution's own tickets
(macros/incremental.sql): the reference data, a record key that arrives after the person's
tickets, a table built by an older version of a model, and the sector-wide models that are
incremental by year. The tests share one sector and run in order, each leaving it built."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import built_small_sector, deliver
from test_incremental import content

from publieksdata.pipeline import run_job

DBT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"


@pytest.fixture(scope="module")
def sector(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("incremental_context") / "home"
    yield built_small_sector(root, mp, b"\x0e", 11)
    mp.undo()


def nightly_equals_full_rebuild(home) -> dict:
    """Run the job as the night would (incremental), then a full rebuild: both the same."""
    run_job(home)
    nightly = content(home)
    run_job(home, full_refresh=True)
    assert content(home) == nightly
    return nightly


def query(home, sql: str, params=()):
    conn = duckdb.connect(str(home.warehouse))
    try:
        return conn.execute(sql, list(params)).fetchall()
    finally:
        conn.close()


def local_share(home, institution: str) -> list:
    return query(
        home,
        "select year, n_local, reference_version from "
        "intermediate.int_institution_year_person_counts where institution_code = ? order by 1",
        [institution],
    )


def test_a_registry_change_rebuilds_the_models_that_read_it(sector):
    """An institution moves to another municipality: its local visitors are counted anew,
    though none of its tickets changed."""
    home = sector
    with home.registry.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    mover, elsewhere = rows[0], next(r for r in rows if r["pc4"] != rows[0]["pc4"])
    before = local_share(home, mover["code"])
    mover["pc4"] = elsewhere["pc4"]
    if "gemeente_code" in mover:
        mover["gemeente_code"] = elsewhere["gemeente_code"]
    with home.registry.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    nightly_equals_full_rebuild(home)
    after = local_share(home, mover["code"])
    assert [r[2] for r in after] != [r[2] for r in before]  # a new reference version
    assert [r[1] for r in after] != [r[1] for r in before]  # other persons are local now


def run_dbt_alone(home, tmp: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PUBLIEKSDATA_WAREHOUSE": str(home.warehouse),
        "DBT_LOG_PATH": str(tmp / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "build", "--exclude-resource-type",
         "unit_test", "--profiles-dir", str(DBT_PROJECT), "--project-dir", str(DBT_PROJECT),
         "--target-path", str(tmp / "target")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_a_record_key_that_arrives_after_the_build_is_picked_up(sector, tmp_path):
    """A warehouse of an older version can hold persons whose record key is not computed yet
    (publieksdata/warehouse.py moves their pseudonyms out of the tickets; the privacy step
    keys them, it needs the keyring): a dbt build before that (dbt run by hand) counts a
    person without a key, and its test blocks publication. The person's institution is
    recomputed at the next build, though its tickets did not change again."""
    home = sector
    [(institution, person)] = query(
        home,
        "select institution_code, person_key from intermediate.int_person_institution_years "
        "order by institution_code, person_key limit 1",
    )
    # the person's pseudonym is kept, the record key not yet computed
    # (dbt's person keys are the heads of the pseudonyms: docs/decisions.md)
    query(home, "update pseudo.person_record_keys set record_key = null "
                "where person_head = cast(? as uhugeint)", [str(person)])  # fmt: skip
    query(home, "update pseudo.tickets set loaded_at = now() where institution_code = ?",
          [institution])  # fmt: skip
    built = run_dbt_alone(home, tmp_path)
    assert built.returncode != 0
    assert "assert_every_person_has_a_record_key" in built.stdout  # blocks publication
    stored = (
        "select record_key from intermediate.int_person_institution_years "
        "where institution_code = ? and person_key = ?"
    )
    assert {r[0] for r in query(home, stored, [institution, person])} == {None}

    run_job(home)  # the privacy step keys the person first; dbt's tests pass again
    keys = {r[0] for r in query(home, stored, [institution, person])}
    assert keys == {r[0] for r in query(home, "select record_key from pseudo.person_record_keys "
                                              "where person_head = cast(? as uhugeint)",
                                        [str(person)])}  # fmt: skip
    assert None not in keys


def test_tables_built_by_an_older_model_are_rebuilt_whole(sector):
    """A warehouse built by the previous version of these models, before they carried their
    bookkeeping columns: the first build after the upgrade rebuilds those tables whole (stale
    counts included) instead of failing on the missing columns or keeping stale rows."""
    home = sector
    before = content(home)  # the previous test ended with a full rebuild
    query(
        home,
        "alter table intermediate.int_person_institution_years drop column record_key; "
        "alter table intermediate.int_person_areas drop column institution_version; "
        "alter table intermediate.int_person_areas drop column reference_version; "
        "alter table intermediate.int_institution_year_person_counts "
        "drop column institution_version; "
        "alter table intermediate.int_institution_year_person_counts "
        "drop column reference_version; "
        "alter table intermediate.int_person_sector_years drop column year_fingerprint; "
        "update intermediate.int_institution_year_person_counts set n_persons = n_persons + 1; "
        "update intermediate.int_person_sector_years set sector_visits = sector_visits + 1",
    )
    run_job(home)  # nothing new delivered: the same tables as before the upgrade
    assert content(home) == before


# the sector-wide models, incremental by year, and a column of each that nothing downstream
# checks: set to -1 (never a real value) it marks a row, and a marked row that survives a
# build was not recomputed
BY_YEAR = {
    "intermediate.int_person_sector_years": "n_institutions",
    "intermediate.int_market_sector_cells": "population",
    "intermediate.int_loyalty_crossover_cells": "key_base",
}
HEADER = "ticket_id,order_id,event_id,event_start,sold_at,price,status,email,customer_id"


def mark(home, year: int) -> None:
    for table, column in BY_YEAR.items():
        query(home, f"update {table} set {column} = -1 where year = ?", [year])


def marked(home, year: int) -> dict:
    return {
        table: query(home, f"select count(*) from {table} where year = ? and {column} = -1",
                     [year])[0][0]
        for table, column in BY_YEAR.items()
    }  # fmt: skip


def test_a_night_recomputes_only_the_years_it_changes(sector):
    """New tickets of the last year recompute the last year of the sector-wide models and keep
    the other years as they were; a refund in the first year recomputes the first year and
    keeps the last."""
    home = sector
    years = [y for (y,) in query(home, "select year from intermediate.int_year_fingerprints "
                                       "order by year")]  # fmt: skip
    first, last = years[0], years[-1]
    assert first < last

    # a night with new persons at an event of the last year
    [(institution, event_id, start)] = query(
        home,
        "select institution_code, event_id, max(event_start) from pseudo.tickets "
        "where year(event_start) = ? group by 1, 2 order by 3 desc, 1, 2 limit 1",
        [last],
    )
    moment = f"{start:%Y-%m-%d %H:%M}"
    deliver(home, institution, "last_year.csv", "\n".join(
        [HEADER] + [f"Y{i},YO{i},{event_id},{moment},{moment},12.50,sold,year{i}@example.org,YC{i}"
                    for i in range(40)]) + "\n")  # fmt: skip
    mark(home, first)
    mark(home, last)
    kept = marked(home, first)
    assert all(kept.values())
    run_job(home)
    assert marked(home, first) == kept  # not recomputed
    assert set(marked(home, last).values()) == {0}  # recomputed

    # a night that reaches back: every ticket of an event of the first year that persons with
    # a sector-wide key attended refunded (anonymous tickets alone would change no input of
    # these models, and rightly recompute nothing)
    refunded = query(
        home,
        "select ticket_id, order_id, event_id, event_start, sold_at, price from pseudo.tickets "
        "where institution_code = ? and status = 'sold' and event_id = ("
        "  select min(event_id) from pseudo.tickets"
        "  where institution_code = ? and year(event_start) = ? and status = 'sold'"
        "    and sector_head is not null)",
        [institution, institution, first],
    )
    assert refunded
    deliver(home, institution, "first_year.csv", "\n".join(
        [HEADER] + [f"{t},{o},{e},{s:%Y-%m-%d %H:%M},{d:%Y-%m-%d %H:%M},{p},refunded,,"
                    for t, o, e, s, d, p in refunded]) + "\n")  # fmt: skip
    mark(home, last)
    kept_last = marked(home, last)
    run_job(home)
    assert set(marked(home, first).values()) == {0}  # recomputed
    assert marked(home, last) == kept_last  # not recomputed
    # that a recomputed year equals a full rebuild: tests/test_incremental.py


def test_an_events_delivery_alone_recomputes_the_occupancy(sector):
    """An events file changes no ticket, so no institution version moves; the benchmark's
    ticket metrics also read the events (occupancy needs their capacity) and are recomputed for
    the institution that delivered them, and for no other."""
    home = sector
    institution, with_capacity = query(
        home,
        "select institution_code, count(*) from pseudo.events where capacity is not null "
        "group by 1 order by 2 desc, 1 limit 1",
    )[0]
    assert with_capacity
    events = query(
        home,
        "select event_id, starts_at, discipline, capacity from pseudo.events "
        "where institution_code = ? and capacity is not null order by event_id",
        [institution],
    )
    table = "intermediate.int_benchmark_ticket_metrics"
    before = dict(query(home, f"select institution_code || year, occupancy from {table}"))
    deliver(home, institution, "capacity_events.csv", "\n".join(
        ["event_id,starts_at,discipline,capacity"]
        + [f"{e},{s:%Y-%m-%d %H:%M},{d},{c * 2}" for e, s, d, c in events]) + "\n")  # fmt: skip
    run_job(home)  # the night
    now = dict(query(home, f"select institution_code || year, occupancy from {table}"))
    night = {k: v for k, v in content(home).items() if "benchmark" in k}
    # what a full rebuild gives (only the benchmark's tables: the test before this one left
    # marked rows in the sector-wide models of a year that no night recomputes)
    run_job(home, full_refresh=True)
    assert {k: v for k, v in content(home).items() if "benchmark" in k} == night
    assert len(night) >= 4
    changed = {k for k in before if now[k] != before[k]}
    assert changed and all(k.startswith(institution) for k in changed), changed
    for k in changed:  # half the occupancy with twice the capacity
        assert now[k] == pytest.approx(before[k] / 2)
