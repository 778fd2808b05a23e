"""Incremental dbt models (macros/incremental.sql): a nightly build that recomputes only the
institutions whose deliveries changed gives exactly what a full rebuild gives, and leaves the
other institutions' rows untouched."""

import duckdb
import pytest
from conftest import built_small_sector, deliver

from exports.release import current_release
from publieksdata.pipeline import run_job

INCREMENTAL = [
    "intermediate.int_customer_links",
    "intermediate.int_person_institution_years",
    "intermediate.int_institution_year_person_counts",
    "intermediate.int_person_areas",
    "intermediate.int_benchmark_ticket_metrics",
    "intermediate.int_ticket_key_repeats",
]


def content(home) -> dict:
    """Every dbt-built table by content: row count and an order-independent hash of its rows."""
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        tables = conn.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where schema_name in ('intermediate', 'marts', 'published') order by 1, 2"
        ).fetchall()
        return {
            f"{s}.{t}": conn.execute(
                f'select count(*), coalesce(sum(hash(x)), 0) from "{s}"."{t}" as x'
            ).fetchone()
            for s, t in tables
        }
    finally:
        conn.close()


def versions(home) -> dict:
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        return {
            table: dict(
                conn.execute(
                    f"select institution_code, max(institution_version) from {table} group by 1"
                ).fetchall()
            )
            for table in INCREMENTAL
        }
    finally:
        conn.close()


def corrections(home, institution: str) -> str:
    """A nightly delivery: five tickets of earlier deliveries now refunded, and new tickets
    of new and of returning persons."""
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        old = conn.execute(
            "select ticket_id, order_id, event_id, event_start, sold_at, price "
            "from pseudo.tickets where institution_code = ? and status = 'sold' "
            "order by ticket_id limit 5",
            [institution],
        ).fetchall()
        event_id, event_start = conn.execute(
            "select event_id, max(event_start) from pseudo.tickets where institution_code = ? "
            "group by 1 order by 2 desc limit 1",
            [institution],
        ).fetchone()
    finally:
        conn.close()
    lines = ["ticket_id,order_id,event_id,event_start,sold_at,price,status,email,customer_id"]
    lines += [f"{t},{o},{e},{s:%Y-%m-%d %H:%M},{d:%Y-%m-%d %H:%M},{p},refunded,,"
              for t, o, e, s, d, p in old]  # fmt: skip
    sold = f"{event_start:%Y-%m-%d %H:%M}"
    lines += [f"N{i},NO{i},{event_id},{sold},{sold},15.00,sold,nightly{i % 30}@example.org,C{i}"
              for i in range(60)]  # fmt: skip
    return "\n".join(lines) + "\n"


RETIRED = {
    ("intermediate", "int_visits", "BASE TABLE"),
    ("staging", "stg_retired", "VIEW"),
    ("published", "retired_cells", "BASE TABLE"),
    # a name that would end the drop statement if its quote were not doubled
    ("staging", 'x"; drop table pseudo.events; --', "BASE TABLE"),
}


def retire_models(home) -> None:
    """What an upgrade leaves behind: tables and a view of models the project no longer has
    (int_visits became a step of int_person_institution_years), one of them in the schema that
    every release exports."""
    with duckdb.connect(str(home.warehouse)) as conn:
        conn.execute(
            "create table intermediate.int_visits as "
            "select institution_code, person_key from intermediate.int_person_institution_years"
        )
        conn.execute("create view staging.stg_retired as select 1 as x")
        conn.execute("create table published.retired_cells as select 'x' as institution_code")
        conn.execute('create table staging."x""; drop table pseudo.events; --" as select 1 as x')


def relations(path, schemas=("staging", "intermediate", "marts", "published")) -> set:
    with duckdb.connect(str(path), read_only=True) as conn:
        return set(conn.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where list_contains(?, table_schema)", [list(schemas)]
        ).fetchall())  # fmt: skip


@pytest.fixture(scope="module")
def nightly(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    home = built_small_sector(tmp_path_factory.mktemp("incremental") / "home", mp, b"\x0d", 8)
    first = versions(home)
    changed = sorted(first["intermediate.int_person_institution_years"])[0]
    deliver(home, changed, "nightly.csv", corrections(home, changed))
    retire_models(home)
    # the next night: another run date (2026 still open), which dbt reads when it runs, so it
    # keeps its saved parse of the project (tests/test_dbt_run_date.py)
    mp.setenv("PUBLIEKSDATA_AS_OF_DATE", "2026-06-02")
    dbt_log = home.dbt / "target" / "dbt.log"  # dagster-dbt logs beside its target
    logged = dbt_log.stat().st_size
    run_job(home)
    with dbt_log.open(encoding="utf-8", errors="replace") as fh:
        fh.seek(logged)
        nightly_log = fh.read()
    yield home, changed, first, versions(home), content(home), nightly_log
    mp.undo()


def test_a_nightly_build_recomputes_only_the_changed_institution(nightly):
    home, changed, before, after, *_ = nightly
    for table in INCREMENTAL:
        assert after[table][changed] > before[table][changed], table
        others = {c: v for c, v in after[table].items() if c != changed}
        assert others == {c: v for c, v in before[table].items() if c != changed}, table


def test_a_build_drops_the_tables_of_retired_models(nightly):
    """A build leaves no table of a model that is gone: such a table would keep person keys
    that erasure and key rotation no longer reach, and one in "published" would be released."""
    home = nightly[0]
    left = relations(home.warehouse)
    assert not RETIRED & left
    # the models are all still there, and dbt's own schema keeps its run-date table
    assert ("intermediate", "int_person_institution_years", "BASE TABLE") in left
    assert ("published", "benchmark", "BASE TABLE") in left
    assert ("main", "dbt_run_date", "BASE TABLE") in relations(home.warehouse, ("main",))
    # the source schemas are never touched
    assert ("pseudo", "events", "BASE TABLE") in relations(home.warehouse, ("pseudo",))
    released = relations(current_release(home) / "marts.duckdb", ("published", "main"))
    assert released and not any(name == "retired_cells" for _, name, _ in released)


def test_a_new_run_date_keeps_dbts_saved_parse(nightly):
    nightly_log = nightly[-1]
    assert "dbt build" in nightly_log or "'which': 'build'" in nightly_log
    assert "Unable to do partial parsing" not in nightly_log
    assert "Partial parsing enabled, no changes found, skipping parsing" in nightly_log


def test_ticket_metrics_read_without_person_keys_agree_with_the_fact(nightly):
    """The benchmark's ticket metrics and the institution-years count the sold tickets without
    resolving person keys; a ticket counts as identified exactly when the fact (customer links
    resolved) gives it a person key. The nightly's refunds, new customers and links included."""
    home = nightly[0]
    with duckdb.connect(str(home.warehouse), read_only=True) as conn:
        fact = conn.execute(
            "select institution_code, event_year, count(*), count(person_key), "
            "median(lead_time_days) from marts.fct_tickets group by 1, 2 order by 1, 2"
        ).fetchall()
        metrics = conn.execute(
            "select institution_code, year, tickets, identified_tickets, lead_time_days_median "
            "from intermediate.int_benchmark_ticket_metrics order by 1, 2"
        ).fetchall()
        years = conn.execute(
            "select institution_code, year, tickets from intermediate.int_institution_years "
            "order by 1, 2"
        ).fetchall()
    assert len(fact) > 5 and any(r[3] < r[2] for r in fact)  # anonymous tickets present
    assert metrics == [(i, y, n, k, float(m)) for i, y, n, k, m in fact]
    assert years == [(i, y, n) for i, y, n, _, _ in fact]


def test_the_nightly_build_equals_a_full_rebuild(nightly):
    home, _, _, _, incremental, _ = nightly
    run_job(home, full_refresh=True)
    assert content(home) == incremental


def test_two_dbt_threads_build_what_one_builds(nightly, monkeypatch):
    # the builds above ran two nodes at a time (the default, PUBLIEKSDATA_DBT_THREADS); one
    # node after another must give every table the same content
    home, _, _, _, incremental, nightly_log = nightly
    assert "Concurrency: 2 threads" in nightly_log
    monkeypatch.setenv("PUBLIEKSDATA_DBT_THREADS", "1")
    run_job(home, full_refresh=True)
    assert content(home) == incremental
