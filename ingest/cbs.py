"""Load the real CBS statistics per postcode (PC4) into ``reference/pc4.csv``.

Source: Statistics Netherlands (CBS), "Statistische gegevens per vierkant en postcode" —
kerncijfers per viercijferige postcode (PC4), published yearly as CSV/XLSX (and GeoPackage).
Licence: CC BY 4.0 — cite "Bron: CBS". The project does not download it (no network at run
time): an operator places the file on the machine and runs
``publieksdata reference cbs --stats <kerncijfers-file> --areas <areas-file>``.

CBS's PC4 file holds counts per postcode but no municipality or centroid, so a second file
gives per PC4: ``gemeente_code, gemeente_naam, provincie, lat, lon`` (for instance made once
from CBS's PC6-to-municipality table and the PC4 polygons' centroids). CBS marks secret or
unknown values with negative codes (-99997, -99995, …); they become empty.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from ingest.reference import check_centroids
from publieksdata.settings import DataHome, PublieksdataError

CBS_AGE_COLUMNS = (
    "aantal_inwoners",
    "aantal_inwoners_0_tot_15_jaar",
    "aantal_inwoners_15_tot_25_jaar",
    "aantal_inwoners_25_tot_45_jaar",
    "aantal_inwoners_45_tot_65_jaar",
    "aantal_inwoners_65_jaar_en_ouder",
)
AREA_COLUMNS = ("pc4", "gemeente_code", "gemeente_naam", "provincie", "lat", "lon")


def _relation(conn: duckdb.DuckDBPyConnection, path: Path, name: str) -> list[str]:
    """Register ``path`` (CSV or XLSX) as view ``name``; return its lower-cased column names."""
    if not path.is_file():
        raise PublieksdataError(f"{path} does not exist")
    if path.suffix.lower() == ".xlsx":
        import pyarrow as pa
        from python_calamine import CalamineWorkbook

        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
        header = [str(h).strip().lower() for h in rows[0]]
        table = pa.table({h: pa.array([None if r[i] == "" else str(r[i]) for r in rows[1:]], pa.string())
                          for i, h in enumerate(header)})  # fmt: skip
        conn.register(name, table)
        return header
    conn.execute(
        f"create or replace temp view {name} as select * from "
        f"read_csv('{str(path).replace(chr(39), chr(39) * 2)}', all_varchar = true, header = true)"
    )
    return [d[0].strip().lower() for d in conn.execute(f"select * from {name} limit 0").description]


def load_cbs_pc4(home: DataHome, stats: Path, areas: Path) -> int:
    """Write ``reference/pc4.csv`` from CBS kerncijfers per PC4 and an areas file; rows written."""
    conn = duckdb.connect()
    stat_cols = _relation(conn, stats, "cbs")
    area_cols = _relation(conn, areas, "areas")
    key = next((c for c in ("pc4", "postcode", "postcode4") if c in stat_cols), None)
    if key is None:
        raise PublieksdataError(f"{stats}: no column pc4 or postcode")
    missing = [c for c in CBS_AGE_COLUMNS if c not in stat_cols]
    if missing:
        raise PublieksdataError(f"{stats}: lacks CBS column(s) {', '.join(missing)}")
    missing = [c for c in AREA_COLUMNS if c not in area_cols]
    if missing:
        raise PublieksdataError(f"{areas}: lacks column(s) {', '.join(missing)}")
    check_centroids(conn, "areas", areas)
    counts = ", ".join(
        f'case when try_cast(try_cast(cbs."{c}" as double) as bigint) >= 0 '
        f'then try_cast(try_cast(cbs."{c}" as double) as bigint) end as "{c}"'
        for c in CBS_AGE_COLUMNS
    )
    home.reference_pc4.parent.mkdir(parents=True, exist_ok=True)
    out = str(home.reference_pc4).replace("'", "''")
    conn.execute(
        f"""
        copy (
            select lpad(trim(cast(try_cast(try_cast(cbs."{key}" as double) as integer) as varchar)), 4, '0') as pc4,
                   areas.gemeente_code, areas.gemeente_naam, areas.provincie,
                   cast(areas.lat as double) as lat, cast(areas.lon as double) as lon, {counts}
            from cbs
            join areas on lpad(trim(areas.pc4), 4, '0')
                = lpad(trim(cast(try_cast(try_cast(cbs."{key}" as double) as integer) as varchar)), 4, '0')
            order by 1
        ) to '{out}' (header, delimiter ',')
        """
    )
    n = conn.execute(f"select count(*) from read_csv('{out}')").fetchone()[0]
    conn.close()
    if n == 0:
        raise PublieksdataError(f"no PC4 of {stats} matched a PC4 of {areas}")
    return n
