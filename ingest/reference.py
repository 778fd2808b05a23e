"""Reference data into the warehouse: the member registry and the PC4 statistics.

Both are read at every run (the registry can change between runs) and
replace the previous copy in one transaction.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from ingest.registry import REGISTRY_COLUMNS, load_registry
from publieksdata.settings import DataHome, PublieksdataError
from publieksdata.warehouse import work_connection

PC4_REQUIRED = (
    "pc4",
    "gemeente_code",
    "gemeente_naam",
    "provincie",
    "lat",
    "lon",
    "aantal_inwoners",
)


def load_reference(home: DataHome) -> dict[str, int | list[str]]:
    members = load_registry(home)  # validates the registry before anything is replaced
    if not home.reference_pc4.is_file():
        raise PublieksdataError(
            f"no PC4 reference data at {home.reference_pc4}: load the CBS statistics per postcode "
            "with 'publieksdata reference --cbs-stats FILE --areas FILE', or run 'publieksdata "
            "generate' for a synthetic sector"
        )
    with work_connection(home) as conn:
        try:
            cols = [d[0] for d in conn.execute(
                "select * from read_csv(?, header = true, all_varchar = true) limit 0",
                [str(home.reference_pc4)]).description]  # fmt: skip
        except duckdb.Error:
            raise PublieksdataError(f"{home.reference_pc4} cannot be read as CSV") from None
        missing = [c for c in PC4_REQUIRED if c not in cols]
        if missing:
            raise PublieksdataError(f"{home.reference_pc4} lacks column(s) {', '.join(missing)}")
        check_centroids(conn, "read_csv(?, header = true, all_varchar = true)",
                        home.reference_pc4, [str(home.reference_pc4)])  # fmt: skip
        numeric = [c for c in cols if c.startswith("aantal_")]
        select = ", ".join(
            ["lpad(trim(pc4), 4, '0') as pc4", "gemeente_code", "gemeente_naam", "provincie",
             "cast(lat as double) as lat", "cast(lon as double) as lon"]
            + [f'cast(nullif("{c}", \'\') as bigint) as "{c}"' for c in numeric]
        )  # fmt: skip
        conn.execute("begin transaction")
        conn.execute(
            f"create or replace table wh.reference.pc4 as select {select} "
            "from read_csv(?, header = true, all_varchar = true)",
            [str(home.reference_pc4)],
        )
        registry = pa.Table.from_pylist(
            [{c: row.get(c) for c in REGISTRY_COLUMNS} for row in members.values()],
            schema=pa.schema([(c, pa.string()) for c in REGISTRY_COLUMNS]),
        )
        conn.register("registry", registry)
        conn.execute("create or replace table wh.reference.institutions as select * from registry")
        conn.execute("commit")
        n_pc4 = conn.execute("select count(*) from wh.reference.pc4").fetchone()[0]
        # members the market products cannot place: no PC4, or one the reference lacks
        unplaced = [r[0] for r in conn.execute(
            "select code from registry where lpad(trim(coalesce(pc4, '')), 4, '0') not in "
            "(select pc4 from wh.reference.pc4) order by code").fetchall()]  # fmt: skip
    return {"institutions": len(members), "pc4_areas": n_pc4, "without_location": unplaced}


def check_centroids(
    conn: duckdb.DuckDBPyConnection, relation: str, where: Path, params: list | None = None
) -> None:
    """Every PC4 area needs a centroid: distances, distance bands and the catchment are computed
    from it, and an area without one would drop its persons from market_catchment while
    market_area counts them (the catchment's disclosure rules need both to add up).
    ``relation`` is SQL for rows with text columns pc4, lat and lon."""
    bad = conn.execute(
        f"""
        select count(*), list(pc4 order by pc4)[1:5]
        from (
            select pc4, try_cast(trim(lat) as double) as lat, try_cast(trim(lon) as double) as lon
            from {relation}
        )
        where lat is null or lon is null or not isfinite(lat) or not isfinite(lon)
            or abs(lat) > 90 or abs(lon) > 180
        """,
        params or [],
    ).fetchone()
    if bad[0]:
        raise PublieksdataError(
            f"{where}: {bad[0]} PC4 area(s) without a valid lat/lon (for example "
            f"{', '.join(str(p) for p in bad[1])}): every area needs its centroid in degrees"
        )
