"""dbt build on a small hand-made sector; every published number of one theatre checked by hand.

The sector (k = 5):
- th_focus, a theatre in PC4 1011 (Amsterdam), the institution under test, 2022-2024;
- nine more theatres in 2024 (th_b .. th_j), so that the small theatres form a peer group of
  ten (quartiles and rank are published from ten institutions on);
- a museum (mus_x) and a music venue (muz_y) that some of th_focus's persons also visit.

th_focus's persons (all with a sector-wide key, i.e. an e-mail pseudonym):
  group  n  born  home  th_focus visits                       elsewhere in 2024
  C      5  2010  1011  2022-10-01                            -
  E      5  1990  e1-e4 3511, e5 9711
                        2022-10-01, 2023-03-01, and in 2024:  muz_y: e1 once, e2-e5 twice
                        e1 2 events, e2-e5 3 events
  A      5  1960  1012  2023-03-01; 2024: 2 events           mus_x once
  D      5  -     -     2023-09-01                            -
  B      6  2000  1011  2024: 1 event                         th_b once
Also in 2024: G (5, home 1012) at th_c and H (5, home 1012) at th_d, ten anonymous free tickets
at th_focus, and anonymous tickets at the other theatres so that tickets are
th_b 10, th_c 20, th_d 30, th_e 50, th_f 60, th_g 70, th_h 80, th_i 90, th_j 100.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import fixture_heads, insert_many, label_columns

from privacy.pseudonymise import record_key
from publieksdata.warehouse import DDL

DBT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"
K = 5

# pc4: (gemeente_code, gemeente_naam, lat, lon, population by CBS band 0-14, 15-24, 25-44, 45-64, 65+)
PC4 = {
    "1011": ("GM0363", "Amsterdam", 52.37, 4.90, (1500, 1000, 3500, 2500, 1500)),
    "1012": ("GM0363", "Amsterdam", 52.38, 4.90, (500, 1000, 1500, 1000, 1000)),
    "3511": ("GM0344", "Utrecht", 52.09, 5.11, (1000, 2000, 2000, 2000, 1000)),
    "9711": ("GM0014", "Groningen", 53.22, 6.57, (400, 1200, 1000, 800, 600)),
}
INSTITUTIONS = {
    "th_focus": ("theater", "1011"),
    "th_b": ("theater", "1011"),
    "th_c": ("theater", "3511"),
    "th_d": ("theater", "3511"),
    **{f"th_{c}": ("theater", "9711") for c in "efghij"},
    "mus_x": ("museum", "1012"),
    "muz_y": ("muziek", "3511"),
}


def haversine_km(a: str | tuple, b: str | tuple) -> float:
    """Great-circle distance between two PC4 centroids (or (lat, lon) pairs), earth radius 6,371 km."""
    a, b = (PC4[p][2:4] if isinstance(p, str) else p for p in (a, b))
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


class Sector:
    """Collects events and tickets of the hand-made sector."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.tickets: list[tuple] = []

    def event(self, inst: str, event_id: str, starts: str, capacity: int | None = None) -> None:
        self.events.append(
            (inst, event_id, datetime.fromisoformat(starts), INSTITUTIONS[inst][0], capacity)
        )

    def ticket(self, inst, event_id, person=None, home=None, born=None, *, price=20.0,
               channel="online", ticket_type="regular", lead_days=10, status="sold"):  # fmt: skip
        start = next(e[2] for e in self.events if e[0] == inst and e[1] == event_id)
        self.tickets.append((
            inst, f"T{len(self.tickets)}", event_id, start, start - timedelta(days=lead_days),
            price, ticket_type, channel, status, person and f"S_{person}", home, born,
        ))  # fmt: skip


def build_sector() -> Sector:
    s = Sector()
    s.event("th_focus", "F22", "2022-10-01 20:00")
    s.event("th_focus", "F23a", "2023-03-01 20:00")
    s.event("th_focus", "F23b", "2023-09-01 20:00")
    s.event("th_focus", "F24a", "2024-03-01 20:00", capacity=50)
    s.event("th_focus", "F24b", "2024-06-01 20:00", capacity=50)
    s.event("th_focus", "F24c", "2024-10-01 20:00")
    for inst in INSTITUTIONS:
        if inst != "th_focus":
            s.event(inst, "X1", "2024-05-01 20:00")
    s.event("muz_y", "X2", "2024-11-01 20:00")

    homes_e = {"e1": "3511", "e2": "3511", "e3": "3511", "e4": "3511", "e5": "9711"}
    for i in range(1, 6):
        s.ticket("th_focus", "F22", f"c{i}", "1011", 2010)
        e = f"e{i}"
        s.ticket("th_focus", "F22", e, homes_e[e], 1990)
        s.ticket("th_focus", "F23a", e, homes_e[e], 1990)
        s.ticket("th_focus", "F23a", f"a{i}", "1012", 1960)
        s.ticket("th_focus", "F23b", f"d{i}")
        for event_id in ("F24a", "F24b") if e == "e1" else ("F24a", "F24b", "F24c"):
            s.ticket("th_focus", event_id, e, homes_e[e], 1990)
        for event_id in ("F24a", "F24b"):
            s.ticket("th_focus", event_id, f"a{i}", "1012", 1960)
        s.ticket("mus_x", "X1", f"a{i}", "1012", 1960, price=10.0, channel="box_office",
                 lead_days=0)  # fmt: skip
        for event_id in ("X1",) if e == "e1" else ("X1", "X2"):
            s.ticket("muz_y", event_id, e, homes_e[e], 1990, price=10.0, channel="box_office",
                     lead_days=0)  # fmt: skip
        s.ticket("th_c", "X1", f"g{i}", "1012", price=10.0, channel="box_office", lead_days=0)
        s.ticket("th_d", "X1", f"h{i}", "1012", price=10.0, channel="box_office", lead_days=0)
    for i in range(1, 7):
        s.ticket("th_focus", "F24a", f"b{i}", "1011", 2000)
        s.ticket("th_b", "X1", f"b{i}", "1011", 2000, price=10.0, channel="box_office",
                 lead_days=0)  # fmt: skip
    for _ in range(10):
        s.ticket("th_focus", "F24a", price=0.0, channel="box_office", ticket_type="free",
                 lead_days=0)  # fmt: skip
    # a cancelled ticket never counts
    s.ticket("th_focus", "F24a", "b1", "1011", 2000, status="cancelled")
    anonymous = {"th_b": 4, "th_c": 15, "th_d": 25, "th_e": 50, "th_f": 60, "th_g": 70,
                 "th_h": 80, "th_i": 90, "th_j": 100}  # fmt: skip
    for inst, n in anonymous.items():
        for _ in range(n):
            s.ticket(inst, "X1", price=10.0, channel="box_office", lead_days=0)
    return s


def write_warehouse(path: Path, sector: Sector) -> None:
    conn = duckdb.connect(str(path))
    conn.execute(DDL.format(db=path.stem))
    label_columns(conn)  # persons by label: fixture_heads makes them heads
    now = datetime(2025, 1, 15)
    insert_many(
        conn,
        "insert into pseudo.events (institution_code, event_id, starts_at, discipline, capacity, "
        "delivery_id, loaded_at) values (?, ?, ?, ?, ?, 'd1', ?)",
        [(*e, now) for e in sector.events],
    )
    insert_many(
        conn,
        "insert into pseudo.tickets (institution_code, ticket_id, order_id, event_id, event_start, "
        "sold_at, price, ticket_type, channel, status, sector_pseudonym, pc4, country, birth_year, "
        "research_opt_out, delivery_id, loaded_at) "
        "values (?, ?, 'o', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, false, 'd1', ?)",
        [(*t[:11], t[10] and "NL", t[11], now) for t in sector.tickets],
    )
    # every person key has a record key (the privacy step writes them; dbt's
    # assert_every_person_has_a_record_key blocks a build without): closed years use none of them
    persons = sorted({t[9] for t in sector.tickets if t[9]})
    insert_many(
        conn,
        "insert into pseudo.person_record_keys (person_key, record_key) values (?, ?)",
        [(p, record_key(b"\x07" * 32, p)) for p in persons],
    )
    fixture_heads(conn)
    conn.execute(
        "create table reference.institutions (code varchar, name varchar, discipline varchar, "
        "pc4 varchar)"
    )
    insert_many(
        conn,
        "insert into reference.institutions values (?, ?, ?, ?)",
        [(code, code, disc, pc4) for code, (disc, pc4) in INSTITUTIONS.items()],
    )
    conn.execute(
        "create table reference.pc4 (pc4 varchar, gemeente_code varchar, gemeente_naam varchar, "
        "provincie varchar, lat double, lon double, aantal_inwoners bigint, "
        "aantal_inwoners_0_tot_15_jaar bigint, aantal_inwoners_15_tot_25_jaar bigint, "
        "aantal_inwoners_25_tot_45_jaar bigint, aantal_inwoners_45_tot_65_jaar bigint, "
        "aantal_inwoners_65_jaar_en_ouder bigint)"
    )
    insert_many(
        conn,
        "insert into reference.pc4 values (?, ?, ?, 'P', ?, ?, ?, ?, ?, ?, ?, ?)",
        [(pc4, g, name, lat, lon, sum(ages), *ages) for pc4, (g, name, lat, lon, ages) in PC4.items()],
    )  # fmt: skip
    conn.close()


def run_dbt(command: str, path: Path, tmp: Path, *select: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PUBLIEKSDATA_WAREHOUSE": str(path),
        "PUBLIEKSDATA_K": str(K),
        # a run date at which 2022-2024 are closed: published exactly, as computed by hand here
        # (the perturbation of open years: tests/test_privacy_attacks.py)
        "PUBLIEKSDATA_AS_OF_DATE": "2025-06-01",
        "DBT_LOG_PATH": str(tmp / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }
    dbt = Path(sys.executable).parent / "dbt"
    return subprocess.run(
        [str(dbt), command, "--profiles-dir", str(DBT_PROJECT), "--project-dir", str(DBT_PROJECT),
         "--target-path", str(tmp / "target"), *(("--select", *select) if select else ())],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dbt_metrics")
    path = tmp / "warehouse.duckdb"
    write_warehouse(path, build_sector())
    result = run_dbt("build", path, tmp)
    assert result.returncode == 0, result.stdout[-4000:]
    conn = duckdb.connect(str(path), read_only=True)
    yield conn
    conn.close()


def rows(conn, sql: str) -> list[dict]:
    cursor = conn.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def only(found: list[dict]) -> dict:
    assert len(found) == 1, found
    return found[0]


def focus(conn, table: str, year: int | None = None) -> list[dict]:
    """th_focus's rows of a published table (of one year)."""
    where = f" and year = {year}" if year else ""
    return rows(conn, f"select * from published.{table} where institution_code = 'th_focus'{where}")


def check(got: dict, want: dict) -> None:
    """Every key of want, floats to 1e-9; the keys of got that want omits are not compared."""
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
        else:
            assert got[key] == value, key


# ---------------------------------------------------------------------------------------------
# Benchmark


def test_benchmark_own_values(warehouse):
    # 2024, tickets: e1 2 + e2..e5 3x4 + a 2x5 + b 1x6 = 30 identified at 20.00, and 10 anonymous
    # free ones at 0.00 (the cancelled ticket does not count) -> 40 tickets, revenue 600,
    # avg_price 600 / 30 paid = 20. Capacity: F24a and F24b (50 each) hold 10 + 6 + 5 + 5 = 26
    # and 5 + 5 = 10 -> occupancy 36 / 100. Online: the 30 identified of 40 -> 0.75; free:
    # 10 of 40 -> 0.25 discounted. Lead time: 30 x 10 days, 10 x 0 -> median 10.
    # Persons: A, B, E = 16; 30 identified tickets / 16 = 1.875. New: B = 6 of 16 (the other 10
    # are 10 >= k). Persons of 2023: A, D, E = 15, back in 2024: A, E = 10 -> 10 / 15.
    # Young (12-29): B, born 2000 (24) = 6 of 16 with a known age. Local (Amsterdam): B (1011)
    # and A (1012) = 11 of 16 with a known PC4, but share_local follows market_area's Amsterdam
    # cell, which is withheld (test_market_area: Utrecht 4 and Groningen 1 hold only 3 beyond
    # one each, so Amsterdam goes too) -> NULL.
    check(only(focus(warehouse, "benchmark", 2024)), {
        "tickets": 40, "revenue": 600, "avg_price": 20.0, "occupancy": 0.36,
        "share_online": 0.75, "share_discounted": 0.25, "lead_time_days_median": 10.0,
        "share_identified": 0.75, "n_persons": 16, "tickets_per_person": 1.875,
        "share_new": 6 / 16, "retention": 10 / 15, "share_young": 6 / 16,
        "share_local": None, "suppressed": True,
        "size_class": "S", "peer_level": "discipline_size", "peer_n_institutions": 10,
    })  # fmt: skip
    # 2023: a x5 + e x5 at F23a, d x5 at F23b, all 20.00 online -> 15 tickets, 300. Persons 15,
    # new: A and D = 10 (E came in 2022). Of 2022's 10 (C, E), E came back: 0.5. Known ages:
    # A (63) and E (33), no one young -> 0 of 10. Known PC4: A (Amsterdam) and E -> 5 of 10,
    # but the municipalities are Amsterdam 5, Utrecht 4, Groningen 1: the withheld 4 and 1 hold
    # 3 < k beyond one each, so Amsterdam is withheld too and share_local with it -> NULL.
    check(only(focus(warehouse, "benchmark", 2023)), {
        "tickets": 15, "revenue": 300, "avg_price": 20.0, "occupancy": None,
        "share_online": 1.0, "share_discounted": 0.0, "lead_time_days_median": 10.0,
        "share_identified": 1.0, "n_persons": 15, "tickets_per_person": 1.0,
        "share_new": 10 / 15, "retention": 0.5, "share_young": 0.0, "share_local": None,
        "suppressed": True, "size_class": "S", "peer_level": "sector", "peer_n_institutions": 1,
    })  # fmt: skip
    # 2022: C and E at F22 -> 10 tickets, 10 persons, all new; no previous year. C is 12 (born
    # 2010): 5 young of 10. C lives in 1011: 5 local of 10, but as in 2023 Amsterdam 5 is
    # withheld beside Utrecht 4 and Groningen 1 -> share_local NULL.
    check(only(focus(warehouse, "benchmark", 2022)), {
        "tickets": 10, "revenue": 200, "n_persons": 10, "share_new": 1.0, "retention": None,
        "share_young": 0.5, "share_local": None, "suppressed": True, "peer_level": "sector",
    })  # fmt: skip


def test_benchmark_peer_statistics(warehouse):
    # Peer group 2024: the ten small theatres. tickets: 10 20 30 [40] 50 60 70 80 90 100:
    # mean 55; quartiles by linear interpolation at positions 2.25, 4.5, 6.75 (0-based):
    # 30 + 0.25 x 10 = 32.5, (50 + 60) / 2 = 55, 70 + 0.75 x 10 = 77.5; percentile rank of 40:
    # 3 below of 9 others -> 33.3. Two largest 190 of 550 (35%): the mean stands.
    # revenue (10.00 a ticket elsewhere): 100 200 300 500 600 [600] 700 800 900 1000: mean 570,
    # 300 + 0.25 x 200 = 350, 600, 700 + 0.75 x 100 = 775; rank 4 / 9 (the tie ranks low).
    # avg_price: nine times 10 and [20]: mean 11, quartiles 10, rank 100.
    # share_online, share_discounted, lead time: nine times 0 and [0.75], [0.25], [10].
    # share_identified: th_b 6/10, th_c 5/20, th_d 5/30, six times 0, [0.75]:
    # mean (0.6 + 0.25 + 1/6 + 0.75) / 10; p75 at 6.75: 1/6 + 0.75 x (0.25 - 1/6).
    # n_persons: [16], th_b 6, th_c 5, th_d 5, six times 0 (0 is published): mean 3.2, two
    # largest 22 of 32 (69%) -> shown; p75 at 6.75 between 5 and 5 = 5.
    # tickets_per_person, share_new: only th_focus, th_b, th_c, th_d have persons (4 < 5): no
    # statistics. share_local: th_b (6 of 6), th_c and th_d (0 of 5); th_focus's is withheld
    # (its Amsterdam cell is, test_market_area) -> 3. share_young: th_focus and th_b (B's ages known): 2. retention
    # and occupancy: th_focus only.
    got = only(focus(warehouse, "benchmark", 2024))
    share_identified = [0.75, 0.6, 0.25, 5 / 30] + [0.0] * 6
    want = {
        "tickets": (10, 55.0, 32.5, 55.0, 77.5, 100 / 3),
        "revenue": (10, 570.0, 350.0, 600.0, 775.0, 400 / 9),
        "avg_price": (10, 11.0, 10.0, 10.0, 10.0, 100.0),
        "occupancy": (1, None, None, None, None, None),
        "share_online": (10, 0.075, 0.0, 0.0, 0.0, 100.0),
        "share_discounted": (10, 0.025, 0.0, 0.0, 0.0, 100.0),
        "lead_time_days_median": (10, 1.0, 0.0, 0.0, 0.0, 100.0),
        "share_identified": (10, sum(share_identified) / 10, 0.0, 0.0,
                             5 / 30 + 0.75 * (0.25 - 5 / 30), 100.0),
        "n_persons": (10, 3.2, 0.0, 0.0, 5.0, 100.0),
        "tickets_per_person": (4, None, None, None, None, None),
        "share_new": (4, None, None, None, None, None),
        "retention": (1, None, None, None, None, None),
        "share_young": (2, None, None, None, None, None),
        "share_local": (3, None, None, None, None, None),
    }  # fmt: skip
    for metric, values in want.items():
        check(got, dict(zip([f"{metric}_peer_{s}" for s in ("n", "mean", "p25", "median", "p75", "rank")], values, strict=True)))  # fmt: skip
    # 2023: th_focus is the only institution, a group of 1 -> n_institutions 1, nothing else
    got = only(focus(warehouse, "benchmark", 2023))
    assert got["tickets_peer_n"] == 1
    assert all(
        got[c] is None for c in got if c.endswith(("_peer_mean", "_peer_median", "_peer_rank"))
    )


def test_dominance_withholds_an_additive_peer_mean(warehouse):
    # mus_x's peer group 2024 falls back to the sector (12 institutions); its n_persons: th_focus
    # 16, th_b 6, th_c 5, th_d 5, mus_x 5, muz_y 5, six zeros = 42, the two largest 22 (52%):
    # shown, 3.5. Tickets: 40 + (10 + 20 + 30 + 50 + ... + 100 = 510) + mus_x 5 + muz_y 9 = 564,
    # the two largest 190 (34%): shown, 564 / 12 = 47.
    got = only(
        rows(warehouse, "select * from published.benchmark where institution_code = 'mus_x'")
    )
    check(got, {"peer_level": "sector", "peer_n_institutions": 12, "n_persons": 5,
                "n_persons_peer_mean": 3.5, "tickets_peer_mean": 47.0})  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Loyalty


def test_loyalty_summary(warehouse):
    got = {r["year"]: r for r in focus(warehouse, "loyalty_summary")}
    # 2024: 16 persons, 6 new (B), 10 returning (A, E). Retention 10 of 2023's 15; new of 2023
    # (A, D = 10) back: A = 5 -> 0.5. Visits: b 6x1 + a 5x2 + e1 2 + e2..e5 4x3 = 30, but
    # avg_visits is withheld: two frequency bands of 2024 are (test below), and 30 visits of 16
    # persons with band 2 (6) and 6+ (0) published would leave only 2-4 persons for band 3-5.
    # Spend 30 x 20.00 / 16 = 37.5. Lapsed: last visit 18-36 months before 31 Dec 2024, i.e.
    # from 1 Jan 2022 to 30 Jun 2023: C (Oct 2022) = 5; D (Sep 2023) is only 15 months ago.
    check(got[2024], {"n_persons": 16, "n_new": 6, "n_returning": 10, "retention": 10 / 15,
                      "new_retention": 0.5, "avg_visits": None, "avg_spend": 37.5,
                      "n_lapsed": 5, "suppressed": True})  # fmt: skip
    # 2023: 15 persons, 10 new, E returning; 2022's 10 persons all new, E back -> 0.5 and 0.5.
    # No n_lapsed: the data does not reach back to 1 January 2021.
    check(got[2023], {"n_persons": 15, "n_new": 10, "n_returning": 5, "retention": 0.5,
                      "new_retention": 0.5, "avg_visits": 1.0, "avg_spend": 20.0,
                      "n_lapsed": None, "suppressed": False})  # fmt: skip
    check(got[2022], {"n_persons": 10, "n_new": 10, "n_returning": 0, "retention": None,
                      "new_retention": None, "n_lapsed": None, "suppressed": False})  # fmt: skip


def test_loyalty_frequency_with_secondary_suppression(warehouse):
    # 2024 bands: 1 visit B = 6; 2 visits A + e1 = 6; 3-5 visits e2..e5 = 4 (< k); 6+ = 0.
    # The 4 alone could be recovered from n_persons (16): the next smallest non-zero band is
    # withheld too - bands 1 and 2 tie at 6, the first in band order (1) goes.
    got = {r["frequency_band"]: r for r in focus(warehouse, "loyalty_frequency", 2024)}
    check(got["1"], {"n_persons": None, "share": None, "suppressed": True})
    check(got["2"], {"n_persons": 6, "share": 6 / 16, "suppressed": False})
    check(got["3-5"], {"n_persons": None, "share": None, "suppressed": True})
    check(got["6+"], {"n_persons": 0, "share": 0.0, "suppressed": False})
    got = {r["frequency_band"]: r["n_persons"] for r in focus(warehouse, "loyalty_frequency", 2023)}
    assert got == {"1": 15, "2": 0, "3-5": 0, "6+": 0}


def test_loyalty_cohorts(warehouse):
    # cohort 2022 (C, E = 10): E active in 2023 and 2024; cohort 2023 (A, D = 10): A in 2024;
    # cohort 2024: B = 6. The cells of 2024 (5 + 5 + 6) add up to its 16 persons.
    got = {(r["cohort_year"], r["year"]): (r["years_since"], r["n_cohort"], r["n_persons"], r["share_active"], r["suppressed"])
           for r in focus(warehouse, "loyalty_cohorts")}  # fmt: skip
    assert got == {
        (2022, 2022): (0, 10, 10, 1.0, False),
        (2022, 2023): (1, 10, 5, 0.5, False),
        (2022, 2024): (2, 10, 5, 0.5, False),
        (2023, 2023): (0, 10, 10, 1.0, False),
        (2023, 2024): (1, 10, 5, 0.5, False),
        (2024, 2024): (0, 6, 6, 1.0, False),
    }


def test_loyalty_crossover(warehouse):
    # 2024, base: the 16 persons (all with a sector-wide key). Another theatre: B at th_b = 6,
    # out of 9 other theatres. A museum: A at mus_x = 5; muziek: E at muz_y = 5; but mus_x and
    # muz_y are the only ones of their discipline, so those cells would be their overlap with
    # th_focus: withheld (fewer than 5 other institutions). 2023: no other institution had
    # tickets, so nothing to name and the zeros stay.
    got = {r["discipline"]: r for r in focus(warehouse, "loyalty_crossover", 2024)}
    assert set(got) == {"theater", "museum", "muziek"}
    check(got["theater"], {"is_own_discipline": True, "n_base_persons": 16, "n_persons": 6, "share": 6 / 16, "suppressed": False})  # fmt: skip
    check(got["museum"], {"is_own_discipline": False, "n_base_persons": 16, "n_persons": None, "share": None, "suppressed": True})  # fmt: skip
    check(got["muziek"], {"is_own_discipline": False, "n_base_persons": 16, "n_persons": None, "share": None, "suppressed": True})  # fmt: skip
    assert [(r["n_persons"], r["share"]) for r in focus(warehouse, "loyalty_crossover", 2023)] == [
        (0, 0.0)
    ] * 3


def test_loyalty_segments(warehouse):
    # 2024 sector visits (distinct institution-events): B 1 + th_b 1 = 2, one discipline ->
    # medium x 1 (6); A 2 + mus_x 1 = 3, theater and museum -> medium x 2 (5); e1 2 + muz_y 1 = 3
    # -> medium x 2 (1); e2..e5 3 + muz_y 2 = 5 -> intensive x 2 (4, < k). The 4 is not left
    # alone: the smallest other non-zero cell is withheld too (medium x 1 and medium x 2 tie at
    # 6; medium x 1 comes first). Zeros stay published.
    got = {(r["intensity"], r["breadth"]): (r["n_persons"], r["share"], r["suppressed"])
           for r in focus(warehouse, "loyalty_segments", 2024)}  # fmt: skip
    zero = (0, 0.0, False)
    assert got == {
        ("light", "1"): zero, ("light", "2"): zero, ("light", "3+"): zero,
        ("medium", "1"): (None, None, True), ("medium", "2"): (6, 6 / 16, False),
        ("medium", "3+"): zero,
        ("intensive", "1"): zero, ("intensive", "2"): (None, None, True), ("intensive", "3+"): zero,
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Market


def test_market_area(warehouse):
    got = {r["area_code"]: r for r in focus(warehouse, "market_area", 2024)}
    assert set(got) == {"1011", "1012", "3511", "9711", "GM0363", "GM0344", "GM0014"}
    d_1012, d_3511, d_9711 = (haversine_km("1011", p) for p in ("1012", "3511", "9711"))
    # Amsterdam's centroid weighted by population: (52.37 x 10,000 + 52.38 x 5,000) / 15,000
    d_amsterdam = haversine_km("1011", ((52.37 * 10000 + 52.38 * 5000) / 15000, 4.90))
    # Municipalities first: Amsterdam 11 (PC4 1011: 6, 1012: 5), Utrecht 4 (3511), Groningen 1
    # (9711). Utrecht and Groningen are below k; each of their PC4 areas is known to hold >= 1, so
    # together they hide (4 - 1) + (1 - 1) = 3 < k persons: the published total (16 persons with
    # a known area, market_catchment) would pin each to [1, 4]. The next smallest, Amsterdam,
    # is withheld too (it counts as two units, its two non-zero PC4 areas): every non-zero
    # municipality is withheld. Amsterdam's PC4 areas then form a forced set: at least two
    # withheld, so 1012 (5) and 1011 (6), 5 + 6 - 2 = 9 >= k beyond one each. 3511 (4) and 9711
    # (1) are below k. Every cell of th_focus is withheld; peer values stay as they are.
    # 1011: B = 6. Peers there: th_focus 6 + th_b 6 = 12, the two largest hold all of it (> 85%):
    # no peer penetration, index or potential.
    check(got["1011"], {"area_level": "pc4", "gemeente_code": "GM0363", "population": 10000,
                        "distance_km": 0.0, "distance_band": "0-10", "n_persons": None,
                        "penetration": None, "peer_level": "discipline_size",
                        "peer_penetration": None, "penetration_index": None, "potential": None,
                        "suppressed": True})  # fmt: skip
    # 1012: A = 5, withheld. Peers: th_focus 5 + th_c 5 (G) + th_d 5 (H) = 15, the two largest
    # 10 (67%): 15 / (10 institutions x 5,000) x 1,000 = 0.3; no own penetration, so no index
    # and no potential.
    check(got["1012"], {"distance_km": d_1012, "distance_band": "0-10", "n_persons": None,
                        "penetration": None, "peer_penetration": 0.3,
                        "penetration_index": None, "potential": None,
                        "suppressed": True})  # fmt: skip
    # 3511: e1..e4 = 4 < k, withheld (its peer count is those same 4: no peer value either);
    # 9711: e5 = 1, withheld.
    check(got["3511"], {"distance_km": d_3511, "distance_band": "25-50", "n_persons": None,
                        "penetration": None, "peer_penetration": None, "suppressed": True})  # fmt: skip
    check(got["9711"], {"distance_km": d_9711, "distance_band": "50+", "n_persons": None,
                        "suppressed": True})  # fmt: skip
    # Amsterdam: 11, withheld (above); peers 11 + 6 + 5 + 5 = 27 (two largest 17, 63%):
    # 27 / (10 x 15,000) x 1,000 = 0.18.
    check(got["GM0363"], {"area_level": "gemeente", "area_name": "Amsterdam", "population": 15000,
                          "distance_km": d_amsterdam, "distance_band": "0-10", "n_persons": None,
                          "penetration": None, "peer_penetration": 0.18,
                          "penetration_index": None, "potential": None,
                          "suppressed": True})  # fmt: skip
    check(got["GM0344"], {"n_persons": None, "population": 8000, "suppressed": True})
    check(got["GM0014"], {"n_persons": None, "population": 4000, "suppressed": True})


def test_market_catchment(warehouse):
    # 2024, 16 persons: 11 within 10 km (1011 at 0, 1012 at ~1.1 km), 4 at ~34 km (3511), 1 at
    # ~144 km (9711). Bands 11 / 0 / 4 / 1: 4 and 1 withheld (5 persons together). Within 10 and
    # 25 km: 11 of 16 (the rest, 5, passes k) would pass the band rules, but every municipality is
    # withheld, so all four PC4 areas form one block, and 10 and 25 km cut it: 1011 and 1012
    # inside (6 + 5, 9 beyond one each), 3511 and 9711 beyond (4 + 1, only 3 beyond one each).
    # The share would give Utrecht + Groningen = 5, each pinned to [1, 4]: NULL. Within 50 km:
    # 15 of 16 would split the withheld bands (and leave 1 beyond): NULL.
    # Radii, rounded up to the ladder 5, 10, 15, 20, 25, 30, 40, 50, ... km: 60% is reached at
    # the 10th person (1012, ~1.1 km: 5 km), 80% and 90% at the 15th (3511, ~34 km: 40 km). A
    # radius of r km says "at least 60% within r km, fewer within the step below" (nothing
    # below the first step, 5 km). The cut at 5 km would split the block of withheld areas into
    # 1011 + 1012 and 3511 + 9711 (4 + 1, only 3 beyond one each), cuts at 30 and 40 km leave
    # 9711 (beyond 40) alone: all withheld.
    assert 0 < haversine_km("1011", "1012") <= 5
    assert 30 < haversine_km("1011", "3511") <= 40 < haversine_km("1011", "9711")
    check(only(focus(warehouse, "market_catchment", 2024)), {
        "n_persons": 16, "share_within_10km": None, "share_within_25km": None,
        "share_within_50km": None, "radius_60_km": None, "radius_80_km": None,
        "radius_90_km": None, "suppressed": True,
    })  # fmt: skip


def band_population(pc4_areas) -> dict[str, float]:
    """CBS bands of the PC4 areas spread per year of age over the metrics' bands."""
    b0, b15, b25, b45, b65 = (sum(PC4[a][4][i] for a in pc4_areas) for i in range(5))
    return {"0-11": b0 * 12 / 15, "12-17": b0 * 3 / 15 + b15 * 3 / 10,
            "18-29": b15 * 7 / 10 + b25 * 5 / 20, "30-44": b25 * 15 / 20, "45-64": b45, "65+": b65}  # fmt: skip


def test_market_age(warehouse):
    # 2024 ages at the first visit: B 24 (18-29) = 6, E 34 (30-44) = 5, A 64 (45-64) = 5.
    # 80% of the persons live within 50 km (15 of 16), but market_catchment withholds every share
    # of 2024 (its areas would be pinned): the catchment compared with is read off the published
    # shares, so here it is the whole country (from the persons it would have said "80% within
    # 50 km, fewer within 25": cuts the shares are withheld for). The four PC4 areas' CBS bands
    # 0-14 3,400, 15-24 5,200, 25-44 8,000, 45-64 6,300, 65+ 4,100 (27,000), spread per year of
    # age: 0-11 = 12/15 x 3,400 = 2,720; 12-17 = 3/15 x 3,400 + 3/10 x 5,200 = 2,240; 18-29 =
    # 7/10 x 5,200 + 5/20 x 8,000 = 5,640; 30-44 = 15/20 x 8,000 = 6,000; 45-64 6,300; 65+ 4,100.
    population = {"0-11": 2720, "12-17": 2240, "18-29": 5640, "30-44": 6000, "45-64": 6300, "65+": 4100}  # fmt: skip
    assert band_population(PC4) == pytest.approx(population)
    persons = {"0-11": 0, "12-17": 0, "18-29": 6, "30-44": 5, "45-64": 5, "65+": 0}
    got = {r["age_band"]: r for r in focus(warehouse, "market_age", 2024)}
    for band, n in persons.items():
        share, pop_share = n / 16, population[band] / 27000
        check(got[band], {"n_persons": n, "share": share, "catchment_radius_km": None,
                          "population_share": pop_share, "share_index": share / pop_share * 100,
                          "suppressed": False})  # fmt: skip


def test_market_sector(warehouse):
    # theater 2024 (10 institutions): Amsterdam residents who visited a theatre: B, A, G, H = 21
    # of 15,000 -> 1.4 per 1,000; the institutions' counts 11 + 6 + 5 + 5, two largest 17 of 27.
    # Utrecht 4 and Groningen 1 are below k, and hide only (4 - 1) + (1 - 1) = 3 < k beyond one
    # each: Amsterdam is withheld too (every non-zero cell of the set). museum and muziek have one institution each: all
    # their cells are withheld, zeros included (business confidentiality).
    got = {
        (r["discipline"], r["gemeente_code"]): r
        for r in rows(warehouse, "select * from published.market_sector where year = 2024")
    }
    check(got[("theater", "GM0363")], {"n_institutions": 10, "n_persons": None, "penetration": None, "suppressed": True})  # fmt: skip
    check(got[("theater", "GM0344")], {"n_persons": None, "suppressed": True})
    check(got[("theater", "GM0014")], {"n_persons": None, "suppressed": True})
    assert all(r["suppressed"] for (d, _), r in got.items() if d != "theater")


def test_nothing_published_below_k_or_with_a_person_key(warehouse):
    for (table,) in warehouse.execute(
        "select table_name from information_schema.tables where table_schema = 'published'"
    ).fetchall():
        cols = [r[0] for r in warehouse.execute(f"describe published.{table}").fetchall()]
        assert not {"person_key", "sector_pseudonym", "customer_pseudonym"} & set(cols)
        # counts of persons; not n_institutions, nor the peer statistics (means over institutions)
        person_counts = [c for c in cols if c.startswith("n_") and c != "n_institutions"
                         and "_peer_" not in c]  # fmt: skip
        for col in person_counts:
            bad = warehouse.execute(
                f"select count(*) from published.{table} where {col} > 0 and {col} < {K}"
            ).fetchone()[0]
            assert bad == 0, (table, col)


def test_a_ticket_twice_in_the_warehouse_fails_the_build(warehouse, tmp_path):
    """pseudo.tickets has no primary key; int_ticket_key_repeats and its test hold the rule.
    The check is incremental by institution, as the models it guards: a row written the way
    the pipeline writes (a new loaded_at) is seen by the next build; one slipped in with an
    old loaded_at only by a full refresh (docs/decisions.md, "Scale")."""
    (source,) = warehouse.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    failed = "FAIL 1 accepted_values_int_ticket_key_repeats_repeated_ticket_ids"
    copy = tmp_path / "warehouse.duckdb"
    copy.write_bytes(Path(source).read_bytes())
    conn = duckdb.connect(str(copy))
    (institution,) = conn.execute("select min(institution_code) from pseudo.tickets").fetchone()
    conn.execute("insert into pseudo.tickets select * replace (now() as loaded_at) "
                 "from pseudo.tickets where institution_code = ? limit 1", [institution])  # fmt: skip
    conn.close()
    select = ("int_institution_versions", "int_ticket_key_repeats")
    result = run_dbt("build", copy, tmp_path, *select)
    assert result.returncode == 1, result.stdout[-4000:]
    assert failed in result.stdout, result.stdout[-4000:]
    # only the institution written was checked again
    conn = duckdb.connect(str(copy))
    versions = dict(conn.execute(
        "select institution_code, institution_version from intermediate.int_ticket_key_repeats"
    ).fetchall())  # fmt: skip
    assert len(versions) == len(set(r[0] for r in warehouse.execute(
        "select institution_code from pseudo.tickets").fetchall()))  # fmt: skip
    assert versions[institution] > max(v for code, v in versions.items() if code != institution)
    conn.close()
    # a duplicate with the loaded_at of its original: unseen by the incremental check, seen by
    # a full refresh
    copy.write_bytes(Path(source).read_bytes())
    conn = duckdb.connect(str(copy))
    conn.execute("insert into pseudo.tickets select * from pseudo.tickets "
                 "where institution_code = ? limit 1", [institution])  # fmt: skip
    conn.close()
    assert run_dbt("build", copy, tmp_path, *select).returncode == 0
    result = run_dbt("build", copy, tmp_path, *select, "--full-refresh")
    assert result.returncode == 1, result.stdout[-4000:]
    assert failed in result.stdout, result.stdout[-4000:]


def test_the_key_columns_of_every_published_mart_refuse_a_null(warehouse):
    """The contracts of the published marts declare their key columns NOT NULL (dbt
    constraints, enforced by DuckDB while dbt builds the table), so a null key fails the model
    and blocks the release like a failed test would."""
    tables = [r[0] for r in warehouse.execute(
        "select table_name from duckdb_tables() where schema_name = 'published'").fetchall()]  # fmt: skip
    assert len(tables) >= 9
    for table in tables:
        columns = {r[0] for r in warehouse.execute(
            "select column_name from duckdb_columns() where schema_name = 'published' "
            "and table_name = ?", [table]).fetchall()}  # fmt: skip
        not_null = {r[0][0] for r in warehouse.execute(
            "select constraint_column_names from duckdb_constraints() where schema_name = "
            "'published' and table_name = ? and constraint_type = 'NOT NULL'", [table]).fetchall()}  # fmt: skip
        if table == "deliveries":  # files, not persons: no year, nothing to suppress
            assert {"institution_code", "delivery_id", "status"} <= not_null
            continue
        assert {"institution_code", "year", "suppressed"} & columns <= not_null, table
        assert {"year", "suppressed"} <= columns, table
