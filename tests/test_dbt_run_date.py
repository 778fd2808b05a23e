"""The run date is a run-time value in dbt (macros/perturbation.sql, record_run_date).

A year is open (its person counts perturbed) until 1 February of the next year, relative to the
run date: PUBLIEKSDATA_AS_OF_DATE (YYYY-MM-DD) when set, else today. dbt's on-run-start hook
writes that date into the one-row table ``dbt_run_date`` when dbt runs, so the models' compiled
SQL is the same every day and dbt's partial parsing (target/partial_parse.msgpack) survives a
new date. These builds run the project as the nightly does (``dbt build`` without unit tests)
on the hand-made sector of tests/test_dbt_metrics.py, in one target folder, with three dates:

- 2025-06-01: 2024 closed, every count exact;
- 2025-01-31: 2024 still open, its counts perturbed; 2022 and 2023 closed and exact;
- 2025-02-01: 2024 closed again.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from test_dbt_metrics import K, build_sector, write_warehouse

DBT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"
DATES = ("2025-06-01", "2025-01-31", "2025-02-01")
OPEN_YEAR = 2024
FULL_PARSE = "Unable to do partial parsing"
NO_PARSE = "Partial parsing enabled, no changes found, skipping parsing"


def dbt(tmp: Path, warehouse: Path, name: str, as_of: str | None, *args: str) -> str:
    """Run dbt against ``warehouse`` with the target folder ``tmp/target`` (shared by every
    invocation, as the pipeline's is); its own log folder. Returns the invocation's dbt.log."""
    logs = tmp / "logs" / name
    env = {
        **os.environ,
        "PUBLIEKSDATA_WAREHOUSE": str(warehouse),
        "PUBLIEKSDATA_K": str(K),
        "DBT_LOG_PATH": str(logs),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PUBLIEKSDATA_AS_OF_DATE", None)
    if as_of is not None:
        env["PUBLIEKSDATA_AS_OF_DATE"] = as_of
    exe = Path(sys.executable).parent / "dbt"
    result = subprocess.run(
        [str(exe), *args, "--profiles-dir", str(DBT_PROJECT), "--project-dir", str(DBT_PROJECT),
         "--target-path", str(tmp / "target")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    return (logs / "dbt.log").read_text()


def published(warehouse: Path) -> dict[str, set[tuple]]:
    """Every published table as a set of rows, the year first."""
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = [r[0] for r in conn.execute(
            "select table_name from duckdb_tables() where schema_name = 'published' "
            "order by 1").fetchall()]  # fmt: skip
        out = {}
        for table in tables:
            cursor = conn.execute(f"select * from published.{table}")
            names = [d[0] for d in cursor.description]
            # deliveries describe files, not years: their "year" is None
            year = names.index("year") if "year" in names else None
            out[table] = {(None if year is None else r[year], *r) for r in cursor.fetchall()}
        return out
    finally:
        conn.close()


def of_years(rows: set[tuple], years: set[int]) -> set[tuple]:
    return {r for r in rows if r[0] in years}


def run_date_row(warehouse: Path) -> tuple:
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        return conn.execute("select as_of_date, first_open_year from main.dbt_run_date").fetchone()
    finally:
        conn.close()


def compiled_models(tmp: Path) -> dict[str, str]:
    root = tmp / "target" / "compiled" / "publieksdata" / "models"
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.sql"))}


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dbt_run_date")
    warehouse = tmp / "warehouse.duckdb"
    write_warehouse(warehouse, build_sector())
    out = {}
    for as_of in DATES:
        log = dbt(tmp, warehouse, as_of, as_of, "build", "--exclude-resource-type", "unit_test")
        out[as_of] = {
            "log": log,
            "published": published(warehouse),
            "run_date": run_date_row(warehouse),
            "compiled": compiled_models(tmp),
        }
    # no PUBLIEKSDATA_AS_OF_DATE: today (the hook runs for any selection; one view is enough)
    before = dt.date.today()
    log = dbt(tmp, warehouse, "today", None, "run", "--select", "stg_reference__pc4")
    out["today"] = {"log": log, "run_date": run_date_row(warehouse),
                    "days": (before, dt.date.today())}  # fmt: skip
    return out


def test_each_build_uses_its_own_date(builds):
    assert builds["2025-06-01"]["run_date"] == (dt.date(2025, 6, 1), 2025)
    assert builds["2025-01-31"]["run_date"] == (dt.date(2025, 1, 31), 2024)
    assert builds["2025-02-01"]["run_date"] == (dt.date(2025, 2, 1), 2025)


def test_without_a_date_the_run_date_is_today(builds):
    day, first_open = builds["today"]["run_date"]
    assert day in builds["today"]["days"]
    assert first_open == (day.year - 1 if day.month == 1 else day.year)


def test_a_year_is_open_until_1_february_of_the_next(builds):
    closed = builds["2025-06-01"]["published"]
    still_open = builds["2025-01-31"]["published"]
    closed_again = builds["2025-02-01"]["published"]
    # 2024 closed on both dates: the same exact numbers
    assert closed_again == closed
    # 2024 open on 31 January 2025: some of its counts perturbed, the closed years untouched
    assert still_open.keys() == closed.keys()
    changed = set()
    for table, rows in closed.items():
        assert of_years(still_open[table], {2022, 2023}) == of_years(rows, {2022, 2023}), table
        if of_years(still_open[table], {OPEN_YEAR}) != of_years(rows, {OPEN_YEAR}):
            changed.add(table)
    assert changed, "no count of the open year was perturbed"


def test_a_new_date_does_not_make_dbt_parse_the_project_again(builds):
    first, *later = DATES
    # the first build has no saved manifest; every later one, with another date, keeps it
    assert NO_PARSE not in builds[first]["log"]
    for as_of in [*later, "today"]:
        log = builds[as_of]["log"]
        assert FULL_PARSE not in log, as_of
        assert NO_PARSE in log, as_of


def test_the_compiled_models_do_not_change_with_the_date(builds):
    # the first build creates the incremental models, the later ones append to them (their SQL
    # differs by is_incremental()); the later two differ by their date only
    first, *later = (builds[as_of]["compiled"] for as_of in DATES)
    assert later[0] and later[0] == later[1]
    assert not any(as_of in sql for as_of in DATES for sql in [*first.values(), *later[0].values()])
