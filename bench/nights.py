"""Consecutive nightly refreshes: does the warehouse stay compact as nights add up?

    python bench/nights.py [--rows 1000000] [--nights 8] [--out bench/results/nights.json]

Generates a sector, runs the whole job (`sector_refresh`, in-process as in
bench/pipeline.py), then ``--nights`` nightly runs, each after a delivery of 1% new ticket
rows for another member (bench/pipeline.py, ``add_nightly_delivery``). After every run it
records the run's wall time, the warehouse file's size, and for ``pseudo.tickets`` and every
incremental dbt model (from the run's dbt manifest) the rows and the row groups that hold
them. The incremental models delete the blocks of changed institutions and append them again
every night (dbt_project/macros/incremental.sql); a table whose row groups grew with every
night would scan slower and take more disk each night. Figures go into docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from pipeline import ROWS_PER_PERSON, add_nightly_delivery, fresh_home  # noqa: E402


def incremental_models(home: Path) -> list[str]:
    """``schema.table`` of every incremental model in the manifest of the last dbt run."""
    manifest = json.loads((home / "dbt" / "target" / "manifest.json").read_text())
    return sorted(
        f"{node['schema']}.{node['alias']}"
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"].get("materialized") == "incremental"
    )


def row_groups(database: Path, tables: list[str]) -> dict[str, dict[str, int]]:
    """Rows and row groups of each table (``schema.table``) of a DuckDB file."""
    import duckdb

    conn = duckdb.connect(str(database), read_only=True)
    try:
        found = {}
        for table in tables:
            [(rows,)] = conn.execute(f"select count(*) from {table}").fetchall()
            [(groups,)] = conn.execute(
                "select count(distinct row_group_id) from pragma_storage_info(?)", [table]
            ).fetchall()
            found[table] = {"rows": rows, "row_groups": groups}
        return found
    finally:
        conn.close()


def run(rows: int, nights: int, seed: int, out: Path | None) -> dict:
    report: dict = {"rows": rows, "nights": nights, "seed": seed, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "home"
        fresh_home(root)
        from publieksdata.synthetic import generate_sector

        institutions = 30 if rows <= 300_000 else 60 if rows <= 3_000_000 else 100
        generated = generate_sector(root, institutions=institutions,
                                    persons=int(rows / ROWS_PER_PERSON), years=3, seed=seed)  # fmt: skip
        report["generated_tickets"] = generated["tickets"]

        import dagster as dg

        from orchestration.project import prepare_manifest

        prepare_manifest()
        from orchestration.definitions import defs

        job = defs.resolve_job_def("sector_refresh")
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        with dg.DagsterInstance.get() as instance:
            for night in range(nights + 1):
                new_rows = (add_nightly_delivery(root, 0.01, generated["tickets"], night=night)
                            if night else 0)  # fmt: skip
                t = time.time()
                result = job.execute_in_process(instance=instance, run_config=quiet)
                wall = time.time() - t
                tables = ["pseudo.tickets", *incremental_models(root)]
                entry = {
                    "night": night,
                    "new_rows": new_rows,
                    "success": result.success,
                    "wall_s": round(wall, 1),
                    "warehouse_mb": round((root / "warehouse.duckdb").stat().st_size / 1e6),
                    "tables": row_groups(root / "warehouse.duckdb", tables),
                }
                report["runs"].append(entry)
                print(json.dumps(entry), flush=True)
                if out:  # written after every run: an interrupted series keeps its nights
                    out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--nights", type=int, default=8)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    run(args.rows, args.nights, args.seed, args.out)


if __name__ == "__main__":
    main()
