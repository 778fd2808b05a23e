"""Publication: a release of the published marts, only after every dbt test passed."""

import hashlib
from pathlib import Path

import dagster as dg
import duckdb

from exports.release import publish_release, remove_incomplete
from orchestration.assets.dbt import published_model_keys
from privacy.guard import check_release
from publieksdata.settings import data_home


@dg.asset(
    key=["release"],
    group_name="publication",
    deps=published_model_keys(),
    description="An immutable release folder in published/<id>/; published/current is switched "
    "only after the whole release is written and verified. Blocked when the compiled SQL of a "
    "published model could carry a person key (privacy/guard.py).",
)
def release(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    home = data_home()
    guard = check_release(home)  # raises, and so blocks the release, on any finding
    remove_incomplete(home)
    rel = publish_release(home)
    return dg.MaterializeResult(
        metadata={
            "release_id": rel.release_id,
            "path": dg.MetadataValue.path(str(rel.path)),
            "tables": dg.MetadataValue.json(_table_summary(rel.path)),
            "files_checksummed": len(rel.manifest["files"]),
            "manifest_sha256": hashlib.sha256(
                (rel.path / "manifest.json").read_bytes()
            ).hexdigest(),
            "k": rel.manifest["k"],
            "person_key_guard": f"{guard.columns} columns of {guard.models} published models "
            "traced: none carries a person key",
        }
    )


def _table_summary(release_path: Path) -> dict:
    """Per published table: rows, and rows with a suppressed cell (counts only, no values)."""
    conn = duckdb.connect(str(release_path / "marts.duckdb"), read_only=True)
    try:
        summary = {}
        for (table,) in conn.execute(
            "select table_name from duckdb_tables() order by 1"
        ).fetchall():
            cols = {r[0] for r in conn.execute(f'describe "{table}"').fetchall()}
            rows, suppressed = conn.execute(
                f"select count(*), {'count(*) filter (where suppressed)' if 'suppressed' in cols else 'null'} "
                f'from "{table}"'
            ).fetchone()
            summary[table] = {"rows": rows, "rows_with_suppressed_cells": suppressed}
        return summary
    finally:
        conn.close()
