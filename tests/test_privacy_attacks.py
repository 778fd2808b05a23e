"""Privacy attacks on the published marts, each written out, and the rule that stops it.

One generated sector (k = 5), built by dbt twice with the run date pinned to 1 June 2026, so
that 2026 is an open year (perturbed) and 2023-2025 are closed (exact):

- 2026 and 2025: thirty theatres with 12-40 persons each, homes in eight PC4 areas of four
  municipalities, ages and visit counts at random (seeded), some persons at two theatres;
- 2024: seven theatres, one of them dominant in tickets (business confidentiality);
- 2023: three theatres (a peer group too small for any statistic).

Release 2 is release 1 plus one new person at each even-numbered theatre in 2026 (one visit,
known age and home): the nightly release after a late delivery. docs/reliability.md lists the
attacks with the promise each test keeps.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest
from conftest import fixture_heads, insert_many, label_columns
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from privacy.pseudonymise import record_key
from publieksdata.warehouse import DDL

DBT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"
K = 5
AS_OF = "2026-06-01"  # 2026 open (until 1 February 2027), 2025 and before closed
RECORD_SECRET = b"\x07" * 32  # stands in for keyring.derive("record")

# pc4: (gemeente, lat, lon)
PC4 = {
    "1011": ("GM0363", 52.37, 4.90), "1012": ("GM0363", 52.38, 4.89),
    "1013": ("GM0363", 52.39, 4.88), "3511": ("GM0344", 52.09, 5.11),
    "3512": ("GM0344", 52.10, 5.12), "9711": ("GM0014", 53.22, 6.57),
    "9712": ("GM0014", 53.21, 6.56), "6211": ("GM0935", 50.85, 5.69),
}  # fmt: skip
NAMES = {"GM0363": "Amsterdam", "GM0344": "Utrecht", "GM0014": "Groningen", "GM0935": "Maastricht"}
THEATRES = [f"th_{i:02d}" for i in range(30)]
HOMES = list(PC4)


class Sector:
    def __init__(self) -> None:
        self.events: dict[tuple[str, str], datetime] = {}
        self.tickets: list[tuple] = []

    def event(self, inst: str, event_id: str, starts: datetime) -> None:
        self.events[(inst, event_id)] = starts

    def ticket(self, inst, event_id, person=None, home=None, born=None, price=20.0):
        start = self.events[(inst, event_id)]
        self.tickets.append((inst, f"T{len(self.tickets)}", event_id, start,
                             start - timedelta(days=7), price, person, home, born))  # fmt: skip


def build_sector() -> tuple[Sector, dict]:
    """The sector and the truth the tests compare with: persons per (institution, year)."""
    rng = random.Random(20261)
    s = Sector()
    truth: dict = defaultdict(set)
    for inst in THEATRES:
        home_pc4 = rng.choice(HOMES)
        for year in (2025, 2026):
            for e in range(8):
                s.event(inst, f"E{year}_{e}", datetime(year, 1 + e, 10, 20))
            for p in range(rng.randint(12, 40)):
                person = f"{inst}_{year}_{p}" if rng.random() < 0.7 else f"{inst}_{p}"
                home = home_pc4 if rng.random() < 0.4 else rng.choice(HOMES)
                born = rng.randint(1940, 2012)
                for e in rng.sample(range(8), rng.choice([1, 1, 1, 2, 2, 3, 4, 7])):
                    s.ticket(inst, f"E{year}_{e}", person, home, born)
                truth[(inst, year)].add(person)
                if rng.random() < 0.15:  # the same person at a second theatre
                    other = rng.choice(THEATRES)
                    if other != inst and (other, f"E{year}_0") in s.events:
                        s.ticket(other, f"E{year}_0", person, home, born)
                        truth[(other, year)].add(person)
    # 2024: seven theatres, th_00 dominant in tickets
    for i, inst in enumerate(THEATRES[:7]):
        s.event(inst, "E2024", datetime(2024, 5, 1, 20))
        for p in range(10 + 2 * i):
            s.ticket(inst, "E2024", f"{inst}_2024_{p}", "1011", 1980)
            truth[(inst, 2024)].add(f"{inst}_2024_{p}")
        for _ in range(3000 if i == 0 else 20):
            s.ticket(inst, "E2024")
    # 2023: three theatres
    for inst in THEATRES[:3]:
        s.event(inst, "E2023", datetime(2023, 5, 1, 20))
        for p in range(12):
            s.ticket(inst, "E2023", f"{inst}_2023_{p}", "1011", 1980)
            truth[(inst, 2023)].add(f"{inst}_2023_{p}")
    return s, truth


def add_late_persons(s: Sector, truth: dict) -> list[str]:
    """Release 2: one new person at every even-numbered theatre in 2026 (one visit)."""
    added = []
    for i, inst in enumerate(THEATRES):
        if i % 2 == 0:
            person = f"late_{inst}"
            s.ticket(inst, "E2026_0", person, HOMES[i % len(HOMES)], 1950 + i)
            truth[(inst, 2026)].add(person)
            added.append(inst)
    return added


def write_warehouse(path: Path, s: Sector) -> None:
    conn = duckdb.connect(str(path))
    conn.execute(DDL.format(db=path.stem))
    label_columns(conn)  # persons by label: fixture_heads makes them heads
    now = datetime(2026, 6, 1)
    insert_many(
        conn,
        "insert into pseudo.events (institution_code, event_id, starts_at, discipline, "
        "delivery_id, loaded_at) values (?, ?, ?, 'theater', 'd1', ?)",
        [(inst, ev, start, now) for (inst, ev), start in s.events.items()],
    )
    insert_many(
        conn,
        "insert into pseudo.tickets (institution_code, ticket_id, order_id, event_id, "
        "event_start, sold_at, price, ticket_type, channel, status, sector_pseudonym, pc4, "
        "country, birth_year, research_opt_out, delivery_id, loaded_at) "
        "values (?, ?, 'o', ?, ?, ?, ?, 'regular', 'online', 'sold', ?, ?, 'NL', ?, false, 'd1', ?)",
        [(*t[:6], t[6] and f"S_{t[6]}", t[7], t[8], now) for t in s.tickets],
    )
    persons = sorted({f"S_{t[6]}" for t in s.tickets if t[6]})
    insert_many(
        conn,
        "insert into pseudo.person_record_keys (person_key, record_key) values (?, ?)",
        [(p, record_key(RECORD_SECRET, p)) for p in persons],
    )
    fixture_heads(conn)
    conn.execute("create table reference.institutions (code varchar, name varchar, "
                 "discipline varchar, pc4 varchar)")  # fmt: skip
    insert_many(
        conn,
        "insert into reference.institutions values (?, ?, 'theater', ?)",
        [(inst, inst, HOMES[i % len(HOMES)]) for i, inst in enumerate(THEATRES)],
    )
    conn.execute("create table reference.pc4 (pc4 varchar, gemeente_code varchar, "
                 "gemeente_naam varchar, provincie varchar, lat double, lon double, "
                 "aantal_inwoners bigint)")  # fmt: skip
    insert_many(
        conn,
        "insert into reference.pc4 values (?, ?, ?, 'P', ?, ?, 5000)",
        [(pc4, g, NAMES[g], lat, lon) for pc4, (g, lat, lon) in PC4.items()],
    )
    conn.close()


def dbt_env(path: Path, tmp: Path) -> dict:
    return {
        **os.environ,
        "PUBLIEKSDATA_WAREHOUSE": str(path),
        "PUBLIEKSDATA_K": str(K),
        "PUBLIEKSDATA_AS_OF_DATE": AS_OF,
        "DBT_LOG_PATH": str(tmp / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }


def dbt(args: list[str], path: Path, tmp: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "dbt"
    return subprocess.run(
        [str(exe), *args, "--profiles-dir", str(DBT_PROJECT), "--project-dir", str(DBT_PROJECT),
         "--target-path", str(tmp / "target")],
        env=dbt_env(path, tmp), capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def published(path: Path) -> dict[str, list[dict]]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        tables = [r[0] for r in conn.execute(
            "select table_name from duckdb_tables() where schema_name = 'published'").fetchall()]  # fmt: skip
        out = {}
        for table in tables:
            cur = conn.execute(f"select * from published.{table}")
            names = [d[0] for d in cur.description]
            out[table] = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        return out
    finally:
        conn.close()


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """(release 1, release 2, truth of release 2, theatres with a late person, folder)."""
    tmp = tmp_path_factory.mktemp("attacks")
    sector, truth = build_sector()
    out = []
    for n in (1, 2):
        if n == 2:
            added = add_late_persons(sector, truth)
        path = tmp / f"release{n}" / "warehouse.duckdb"
        path.parent.mkdir()
        write_warehouse(path, sector)
        # release 1 runs every dbt test too; release 2 only rebuilds (time)
        result = dbt(["build" if n == 1 else "run", "--threads", "4"], path, tmp / f"release{n}")
        assert result.returncode == 0, result.stdout[-4000:]
        out.append(published(path))
    return out[0], out[1], truth, added, tmp


def by(rows: list[dict], *keys: str) -> dict:
    return {tuple(r[k] for k in keys): r for r in rows}


# ---------------------------------------------------------------------------------------------
# a. Differencing two nightly releases


def test_differencing_two_releases_does_not_show_the_added_person(releases):
    """Attack: release 1 and release 2 differ by one late person at a theatre (the attacker knows
    the person and that they were delivered tonight). The attacker subtracts last night's
    published count of a cell from tonight's (the theatre's persons, its new persons, the
    frequency band '1' and the person's age band) to learn whether the person is in the cell:
    without perturbation the difference is exactly +1 when they are, 0 when they are not.

    Promise: in an open year the difference is +1 plus a fresh deviation minus the old one; over
    the cells with an addition it is <= 0 for a substantial share, its values overlap those of a
    cell that got two persons, and it never names the cell outright.
    """
    r1, r2, truth, added, _ = releases
    cells = [("benchmark", ("institution_code", "year"), "n_persons"),
             ("loyalty_summary", ("institution_code", "year"), "n_new"),
             ("loyalty_frequency", ("institution_code", "year", "frequency_band"), "n_persons"),
             ("market_age", ("institution_code", "year", "age_band"), "n_persons")]  # fmt: skip
    diffs = []
    for table, keys, column in cells:
        before, after = by(r1[table], *keys), by(r2[table], *keys)
        for inst in added:
            for key, row in after.items():
                if key[0] != inst or key[1] != 2026:
                    continue
                if table == "loyalty_frequency" and key[2] != "1":
                    continue
                if table == "market_age":
                    i = THEATRES.index(inst)
                    age = 2026 - (1950 + i)
                    band = "30-44" if age < 45 else "45-64" if age < 65 else "65+"
                    if key[2] != band:
                        continue
                old, new = before[key][column], row[column]
                if old is not None and new is not None:
                    diffs.append(new - old)
    assert len(diffs) >= 30, len(diffs)
    assert all(-3 <= d <= 5 for d in diffs), diffs
    at_most_zero = sum(d <= 0 for d in diffs) / len(diffs)
    assert at_most_zero >= 0.2, (at_most_zero, diffs)
    # the difference +1 (what an unperturbed release shows) is not the rule
    assert sum(d == 1 for d in diffs) / len(diffs) < 0.6, diffs
    # an addition often shows as no change at all, the difference of a cell without one
    assert sum(d == 0 for d in diffs) / len(diffs) >= 0.1, diffs
    # and one addition overlaps two (+2 before perturbation: 0..4 after) in most of its values
    assert sum(0 <= d <= 4 for d in diffs) / len(diffs) >= 0.5, diffs


def test_same_persons_same_deviation_across_tables_and_releases(releases):
    """Attack: average away the noise by reading the same group of persons in several tables (or
    in several releases) and combining the deviations.

    Promise: a set of persons gets one deviation. The theatre's persons show the same count in
    benchmark and loyalty_summary; the new persons the same in loyalty_summary and
    loyalty_cohorts; a theatre without a late person shows in release 2 exactly what it showed in
    release 1, every table, every row.
    """
    r1, r2, truth, added, _ = releases
    for release in (r1, r2):
        bench = by(release["benchmark"], "institution_code", "year")
        summary = by(release["loyalty_summary"], "institution_code", "year")
        cohorts = by(release["loyalty_cohorts"], "institution_code", "cohort_year", "year")
        for (inst, year), row in summary.items():
            assert row["n_persons"] == bench[(inst, year)]["n_persons"]
            if (inst, year, year) in cohorts and row["n_new"] is not None:
                assert cohorts[(inst, year, year)]["n_persons"] == row["n_new"]
    perturbed_somewhere = False
    keys_of = {
        "benchmark": (), "loyalty_summary": (), "market_catchment": (),
        "loyalty_frequency": ("frequency_band",), "loyalty_cohorts": ("cohort_year",),
        "loyalty_crossover": ("discipline",), "loyalty_segments": ("intensity", "breadth"),
        "market_area": ("area_level", "area_code"), "market_age": ("age_band",),
    }  # fmt: skip
    for table, extra in keys_of.items():
        rows = r1[table]
        keys = ("institution_code", "year", *extra)
        second = {tuple(r[k] for k in keys): r for r in r2[table]}
        for row in rows:
            if row["institution_code"] in added:
                continue
            if table == "benchmark":  # peer statistics pool every theatre, changed ones too
                row = {c: v for c, v in row.items() if "_peer_" not in c}
            twin = second[tuple(row[k] for k in keys)]
            if table == "market_area":  # the peer penetration pools changed theatres too
                row = {c: v for c, v in row.items() if not c.startswith("peer_pen")
                       and c not in ("penetration_index", "potential")}  # fmt: skip
            assert {c: twin[c] for c in row} == row, (table, row)
    for (inst, year), row in by(r1["benchmark"], "institution_code", "year").items():
        if year == 2026 and row["n_persons"] is not None:
            exact = len({p for p in truth[(inst, 2026)] if not p.startswith("late_")})
            assert row["n_persons"] >= K and abs(row["n_persons"] - exact) <= 2
            perturbed_somewhere |= row["n_persons"] != exact
    assert perturbed_somewhere, "no open-year count was perturbed"


def test_closed_years_are_exact(releases):
    """Promise: a closed year (2025 here) is published exactly, in both releases."""
    r1, r2, truth, _, _ = releases
    for release in (r1, r2):
        for (inst, year), row in by(release["benchmark"], "institution_code", "year").items():
            if year <= 2025:
                assert row["n_persons"] == len(truth[(inst, year)]), (inst, year)


# ---------------------------------------------------------------------------------------------
# b. Recovering a withheld cell from published totals (linear programming)


def constraints_of(release: dict[str, list[dict]], inst: str, year: int):
    """Every additive relation the attacker can read from one release for one theatre-year.

    Nodes are quantities (a cell, a total); a node is known when published (or derivable from a
    published share and its published total), else a variable. Returns (known, relations,
    bounds), a relation being (total node, [part nodes]) with total = sum(parts), a bound
    ({node: coefficient}, rhs) with sum(coefficient x node) <= rhs.
    """
    known: dict = {}
    relations: list = []
    bounds: list = []

    def rows(table):
        return [r for r in release[table] if r["institution_code"] == inst and r["year"] == year]

    def note(node, value):
        if value is not None:
            known[node] = value

    persons = ("persons",)
    summary = rows("loyalty_summary")[0]
    note(persons, summary["n_persons"])
    note(("cohort", year), summary["n_new"])
    note(("returning",), summary["n_returning"])
    relations.append((persons, [("cohort", year), ("returning",)]))
    # frequency bands add up to the persons
    relations.append((persons, [("freq", r["frequency_band"]) for r in rows("loyalty_frequency")]))
    for r in rows("loyalty_frequency"):
        note(("freq", r["frequency_band"]), r["n_persons"])
    # cohorts of the year add up to the persons
    cohort_rows = [r for r in rows("loyalty_cohorts")]
    relations.append((persons, [("cohort", r["cohort_year"]) for r in cohort_rows]))
    for r in cohort_rows:
        note(("cohort", r["cohort_year"]), r["n_persons"])
    # age bands add up to the persons of known age; a published share gives that total
    age = rows("market_age")
    relations.append((("known_age",), [("age", r["age_band"]) for r in age]))
    for r in age:
        note(("age", r["age_band"]), r["n_persons"])
        if r["share"] and r["n_persons"]:
            note(("known_age",), round(r["n_persons"] / r["share"]))
    bench = rows("benchmark")[0]
    if bench["share_young"] is not None and ("known_age",) in known:
        note(("young",), round(bench["share_young"] * known[("known_age",)]))
        relations.append((("young",), [("age", "12-17"), ("age", "18-29")]))
    # areas: PC4 cells add up to their municipality, municipalities to the persons with a known
    # area (market_catchment's n_persons), distance bands to the cumulative shares
    area = rows("market_area")
    catchment = rows("market_catchment")[0]
    note(("located",), catchment["n_persons"])
    gemeenten = [r for r in area if r["area_level"] == "gemeente"]
    relations.append((("located",), [("area", r["area_code"]) for r in gemeenten]))
    for r in area:
        note(("area", r["area_code"]), r["n_persons"])
    for g in gemeenten:
        relations.append((("area", g["area_code"]), [("area", r["area_code"]) for r in area
                          if r["area_level"] == "pc4" and r["gemeente_code"] == g["area_code"]]))  # fmt: skip
    bands = {"10": ("0-10",), "25": ("0-10", "10-25"), "50": ("0-10", "10-25", "25-50")}
    for radius, inside in bands.items():
        share = catchment[f"share_within_{radius}km"]
        if share is not None and catchment["n_persons"]:
            note(("within", radius), round(share * catchment["n_persons"]))
            relations.append((("within", radius), [("area", r["area_code"]) for r in area
                              if r["area_level"] == "pc4" and r["distance_band"] in inside]))  # fmt: skip
    # inequalities: the radius holding p of the located persons (rounded up to a step r of the
    # ladder) says at least p within r km and fewer within the step below; market_age's
    # catchment c (10, 25, 50) says at least 80% within c
    pc4 = [r for r in area if r["area_level"] == "pc4"]

    def share_bound(share: float, max_km: float, at_least: bool) -> None:
        inside = {("area", r["area_code"]): 1.0 for r in pc4 if r["distance_km"] <= max_km}
        if at_least:  # share x located - sum(inside) <= 0
            bounds.append(({**{a: -1.0 for a in inside}, ("located",): share}, 0.0))
        elif catchment["n_persons"] is not None:  # sum(inside) < share x located, whole persons
            bounds.append((inside, math.ceil(share * catchment["n_persons"]) - 1.0))
        else:
            bounds.append(({**inside, ("located",): -share}, 0.0))

    for pct in (60, 80, 90):
        r_km = catchment[f"radius_{pct}_km"]
        if r_km is not None:
            share_bound(pct / 100, r_km, at_least=True)
            if step_below(r_km) is not None:
                share_bound(pct / 100, step_below(r_km), at_least=False)
    # (a smaller radius says "less than 80%" only where its share is published: a withheld
    # share is passed over, whatever it holds)
    radius = age[0]["catchment_radius_km"] if age else None
    if radius is not None:
        share_bound(0.8, radius, at_least=True)
        for smaller in (10, 25):
            if smaller < radius and catchment[f"share_within_{smaller}km"] is not None:
                share_bound(0.8, smaller, at_least=False)
    return known, relations, bounds


# market_catchment's radii are rounded up to these steps (then to 100s): dbt's radius_ladder
RADIUS_LADDER = (5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 100, 125, 150, 200, 250, 300)


def step_below(radius: float) -> float | None:
    """The step below a published radius; none below the first (no distance is below 0)."""
    if radius > RADIUS_LADDER[-1]:
        return radius - 100
    assert radius in RADIUS_LADDER, radius  # a published radius is a step
    i = RADIUS_LADDER.index(radius)
    return RADIUS_LADDER[i - 1] if i else None


def lp_intervals(known: dict, relations: list, bounds: list = ()) -> dict:
    """Smallest and largest value of every unknown node over all non-negative solutions in which
    a withheld cell holds at least 1 (zeros are published, so a withheld cell is not 0), subject
    to the relations (equalities) and the bounds (inequalities)."""
    nodes = sorted({n for t, parts in relations for n in [t, *parts]} - set(known), key=str)
    if not nodes:
        return {}
    index = {n: i for i, n in enumerate(nodes)}
    # sum(coefficient x node) <= or = rhs, the known nodes moved to the right-hand side
    rows: dict[str, tuple[list, list]] = {"ub": ([], []), "eq": ([], [])}
    linear = [("ub", coefficients.items(), rhs) for coefficients, rhs in bounds] + [
        ("eq", [(total, -1.0)] + [(p, 1.0) for p in parts], 0.0) for total, parts in relations
    ]
    for kind, terms, rhs in linear:
        row = np.zeros(len(nodes))
        for node, coefficient in terms:
            if node in index:
                row[index[node]] += coefficient
            else:
                rhs -= coefficient * known[node]
        if row.any():
            rows[kind][0].append(row)
            rows[kind][1].append(rhs)
    (a_ub, b_ub), (a_eq, b_eq) = rows["ub"], rows["eq"]
    out = {}
    for node, i in index.items():
        c = np.zeros(len(nodes))
        c[i] = 1.0
        constraints = {"A_eq": a_eq or None, "b_eq": b_eq or None,
                       "A_ub": a_ub or None, "b_ub": b_ub or None}  # fmt: skip
        low = linprog(c, **constraints, bounds=(1, None), method="highs")
        high = linprog(-c, **constraints, bounds=(1, None), method="highs")
        assert low.status == 0, (node, low.message)  # the true values are a solution
        out[node] = (low.fun, -high.fun if high.status == 0 else float("inf"))
    return out


def test_withheld_cells_cannot_be_narrowed_by_linear_programming(releases):
    """Attack: take every published number of a closed year (exact) that adds up with others:
    frequency bands and cohorts to the persons, new + returning to the persons, age bands to the
    persons of known age (a published share gives that total), share_young to two age bands, PC4
    areas to their municipality, municipalities to the catchment's persons, distance bands to
    the catchment's cumulative shares; and the inequalities of the radii holding 60/80/90% (at
    least that share within r km, less within the step below, beside the areas' published
    distances) and of market_age's catchment (80% within it, less within a smaller one). Solve
    the linear programme min / max of each withheld cell subject to all of them, each withheld
    cell >= 1 (zeros are always published).

    Promise: the interval of every withheld cell is at least k wide. (With withholding only
    until the withheld cells held k persons, cells 4 and 1 of a published total were each pinned
    to [1, 4]: the rule now withholds until sum - count >= k. Two withheld municipalities of 7
    persons, one split over three withheld PC4 areas, pinned an area to [1, 4]: a withheld
    municipality now counts one unit per non-zero PC4 area. A published municipality of 7 over
    areas of 2, 2 and 3 pinned each to [1, 5]: such a municipality is now withheld itself. With
    every radius published, 110 of 421 withheld cells were narrowed; with market_age's catchment
    taken from the persons, not from the published shares, 26.)
    """
    r1, _, truth, _, _ = releases
    checked = 0
    for inst in THEATRES:
        for year in (2025,):
            known, relations, bounds = constraints_of(r1, inst, year)
            for node, (low, high) in lp_intervals(known, relations, bounds).items():
                assert high - low >= K - 1e-6, (inst, year, node, low, high)
                checked += 1
    assert checked >= 30  # the sector withholds plenty
    # the attack meets catchment shares published beside withheld PC4 areas on both sides of
    # their radius (market_catchment's blocks and parts), not only shares that add nothing
    assert shares_beside_withheld_areas_on_both_sides(r1, 2025) >= 3
    # and radii holding 60/80/90% published (their inequalities enter the attack)
    radii = [c[f"radius_{p}_km"] for c in r1["market_catchment"] if c["year"] == 2025
             for p in (60, 80, 90)]  # fmt: skip
    assert sum(r is not None for r in radii) >= 3


def shares_beside_withheld_areas_on_both_sides(release: dict[str, list[dict]], year: int) -> int:
    inside = {10: ("0-10",), 25: ("0-10", "10-25"), 50: ("0-10", "10-25", "25-50")}
    found = 0
    for c in release["market_catchment"]:
        if c["year"] != year:
            continue
        withheld = [a["distance_band"] for a in release["market_area"] if a["suppressed"]
                    and a["area_level"] == "pc4" and a["institution_code"] == c["institution_code"]
                    and a["year"] == year]  # fmt: skip
        for radius, bands in inside.items():
            sides = {band in bands for band in withheld}
            found += c[f"share_within_{radius}km"] is not None and sides == {True, False}
    return found


# ---------------------------------------------------------------------------------------------
# c. Business confidentiality: small peer groups and a dominant institution


def test_a_member_cannot_subtract_itself_from_a_peer_statistic(releases):
    """Attack: a member reads its peer group's mean and n_institutions, multiplies them into the
    peer total, subtracts its own value and so learns the others' total; with one other member,
    that is the other's value, and with a dominant other, nearly so. Quartiles of a few members
    are members' values.

    Promise: a group of three (2023) publishes no peer mean, quartile or rank; a group of seven
    (2024) publishes means but no quartiles or rank; an additive total where the two largest hold
    more than 85% (tickets in 2024, th_00 sells 3,000) is withheld; and where a mean is published,
    every member's upper bound (total - own) on any single other member exceeds that member's
    value by at least 15% of the total.
    """
    r1, _, _, _, _ = releases
    bench = by(r1["benchmark"], "institution_code", "year")
    for inst in THEATRES[:3]:
        row = bench[(inst, 2023)]
        assert row["tickets_peer_n"] == 3
        assert all(row[c] is None for c in row if c.endswith(("_peer_mean", "_peer_p25",
                   "_peer_median", "_peer_p75", "_peer_rank")))  # fmt: skip
    group = [bench[(inst, 2024)] for inst in THEATRES[:7]]
    for row in group:
        assert row["peer_n_institutions"] == 7
        assert all(row[c] is None for c in row if c.endswith(("_peer_p25", "_peer_median",
                   "_peer_p75", "_peer_rank")))  # fmt: skip
        assert row["tickets_peer_mean"] is None and row["revenue_peer_mean"] is None
        assert row["n_persons_peer_mean"] is not None
    values = {r["institution_code"]: r["n_persons"] for r in group}
    total = group[0]["n_persons_peer_mean"] * group[0]["n_persons_peer_n"]
    assert total == pytest.approx(sum(values.values()))
    for attacker, own in values.items():
        others = total - own
        for other, value in values.items():
            if other != attacker:
                assert others - value >= 0.15 * total - 1e-9, (attacker, other)


# ---------------------------------------------------------------------------------------------
# d. Secondary suppression, property-based


@pytest.fixture(scope="module")
def suppression_sql(tmp_path_factory) -> str:
    """The project's own primary + secondary suppression, compiled by dbt for a table `cells`
    (set_id, cell_id, n): the SQL the models run, executed here on generated sets."""
    tmp = tmp_path_factory.mktemp("suppression_sql")
    inline = (
        "with primary_suppression as (select set_id, cell_id, n, {{ k_fails('n') }} as is_withheld "
        "from cells) {{ secondary_suppression('primary_suppression', ['set_id', 'cell_id', 'n'], "
        "set_columns=['set_id'], n_column='n', flag_column='is_withheld', tiebreak=['cell_id']) }}"
    )
    result = dbt(["compile", "--quiet", "--inline", inline], tmp / "empty.duckdb", tmp)
    assert result.returncode == 0, result.stdout[-4000:]
    return result.stdout.strip()


counts = st.one_of(st.just(0), st.integers(1, K - 1), st.integers(K, 4 * K))


@settings(max_examples=300, deadline=None)
@given(sets=st.lists(st.lists(counts, min_size=2, max_size=9), min_size=1, max_size=6))
def test_secondary_suppression_properties(suppression_sql, sets):
    """Attack: a set of cells adds up to a published total; the attacker subtracts the published
    cells from it. Promise, for any cells: no published count 0 < n < k; zeros stay published
    (a withheld zero would only hide no one); never exactly one withheld cell beside published
    non-zero ones; the withheld cells hold at least k persons, and at least k beyond one each
    (sum - count >= k), unless every non-zero cell of the set is withheld."""
    conn = duckdb.connect(":memory:")
    conn.execute("create table cells (set_id integer, cell_id integer, n integer)")
    conn.executemany(
        "insert into cells values (?, ?, ?)",
        [(s, c, n) for s, cells in enumerate(sets) for c, n in enumerate(cells)],
    )
    out = conn.execute(f"select set_id, n, is_withheld from ({suppression_sql})").fetchall()
    conn.close()
    by_set = defaultdict(list)
    for set_id, n, withheld in out:
        by_set[set_id].append((n, withheld))
    for cells in by_set.values():
        assert not any(w and n == 0 for n, w in cells), cells
        assert not any(not w and 0 < n < K for n, w in cells), cells
        withheld = [n for n, w in cells if w]
        published_non_zero = [n for n, w in cells if not w and n > 0]
        if not withheld:
            continue
        if published_non_zero:
            assert len(withheld) >= 2, cells
            assert sum(withheld) >= K, cells
            assert sum(withheld) - len(withheld) >= K, cells


# ---------------------------------------------------------------------------------------------
# The guard against the perturbation's keys


def test_the_cell_key_never_reaches_a_published_column(releases, tmp_path):
    """Attack: read record keys or cell keys from a published table (they would let anyone undo
    the perturbation). Promise: no published column is named like one, and the lineage guard,
    run on the compiled project, finds no published column computed from a record key."""
    from privacy.guard import check_manifest

    r1, _, _, _, folder = releases
    for table, rows in r1.items():
        for column in rows[0] if rows else []:
            assert "key" not in column and "deviation" not in column, (table, column)
    manifest = json.loads((folder / "release1" / "target" / "manifest.json").read_text())
    report = check_manifest(manifest)
    assert report.models >= 10 and report.findings == []
