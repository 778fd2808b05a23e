"""The sector-wide models, incremental by year (macros/incremental.sql, "Incremental by year"):
a night recomputes only the years whose content changed, and then equals a full rebuild."""

import pytest
from conftest import deliver, isolated_home
from test_incremental_context import nightly_equals_full_rebuild, query

from publieksdata.pipeline import run_job
from publieksdata.synthetic import generate_sector


@pytest.fixture(scope="module")
def sector(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("PUBLIEKSDATA_AS_OF_DATE", "2026-06-01")
    home = isolated_home(tmp_path_factory.mktemp("incremental_years") / "home", mp, b"\x0f")
    generate_sector(home.root, institutions=5, persons=900, years=2, seed=12)
    run_job(home)
    yield home
    mp.undo()


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
    the other years as they were; a refund in the first year recomputes the first year, and
    the build equals a full rebuild."""
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
        "    and sector_pseudonym is not null)",
        [institution, institution, first],
    )
    assert refunded
    deliver(home, institution, "first_year.csv", "\n".join(
        [HEADER] + [f"{t},{o},{e},{s:%Y-%m-%d %H:%M},{d:%Y-%m-%d %H:%M},{p},refunded,,"
                    for t, o, e, s, d, p in refunded]) + "\n")  # fmt: skip
    nightly = nightly_equals_full_rebuild(home)  # the first year's marks are gone
    assert nightly["intermediate.int_year_fingerprints"][0] == len(years)
