"""Publication: a release of the published marts, only after every dbt test passed."""

import datetime as dt
import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import duckdb

from exports.release import PUBLISHED_SCHEMA, publish_release, published_tables, remove_incomplete
from orchestration.assets.dbt import published_model_keys, run_date
from privacy.guard import check_release
from publieksdata.locking import warehouse_lock
from publieksdata.settings import data_home


class ReleaseConfig(dg.Config):
    force: bool = False
    """Publish a new release even when its content equals the current one (erasure and key
    rotation set this: the erasure log names the release published without the person)."""


@dg.asset(
    key=["release"],
    group_name="publication",
    deps=published_model_keys(),
    description="An immutable release folder in published/<id>/; published/current is switched "
    "only after the whole release is written and verified. Blocked when the compiled SQL of a "
    "published model could carry a person key (privacy/guard.py). When the published content "
    "equals the current release's (manifest content_fingerprint), no release is written: the "
    "materialisation says 'unchanged, release <id> kept' and keeps the same data version.",
)
def release(context: dg.AssetExecutionContext, config: ReleaseConfig) -> dg.MaterializeResult:
    home = data_home()
    with (
        warehouse_lock(home, f"publication (run {context.run.run_id})"),
        ThreadPoolExecutor(1, thread_name_prefix="person-key-guard") as pool,
    ):
        # the guard raises, and so blocks the release, on any finding. It runs beside the
        # content fingerprint (Python beside DuckDB); the release waits for it before it writes
        # anything, or keeps an unchanged release (publish_release's `checked`)
        guarding = pool.submit(check_release, home)
        remove_incomplete(home)
        # open years are perturbed by the dbt models (macros/perturbation.sql): the manifest
        # says so when the release holds one
        try:
            rel = publish_release(
                home,
                open_years_perturbed=holds_open_year(home.warehouse),
                only_if_changed=not config.force,
                checked=guarding.result,
            )
        except BaseException:
            finding = guarding.exception()  # a finding of the guard is the step's error
            if finding is not None:
                raise finding from None
            raise
        guard = guarding.result()
    if rel.unchanged:
        context.log.info(f"published content unchanged: release {rel.release_id} kept")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(rel.manifest.get("content_fingerprint", rel.release_id)),
        metadata={
            "outcome": f"unchanged, release {rel.release_id} kept"
            if rel.unchanged
            else f"new release {rel.release_id}",
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
        },
    )


def first_open_year(day: dt.date) -> int:
    """A year is open until 1 February of the next (macros/perturbation.sql, record_run_date)."""
    return day.year - 1 if day.month == 1 else day.year


def holds_open_year(warehouse: Path, day: dt.date | None = None) -> bool:
    """Whether a published table has a row of a year still open: only then does the release hold
    perturbed counts, and only then does its manifest say open_years_perturbed.

    Without ``day`` the first open year is the one the last dbt build perturbed with (the table
    ``main.dbt_run_date`` its on-run-start hook wrote), so a build just before midnight and a
    release just after agree; a warehouse without that table falls back to today's run date."""
    conn = duckdb.connect(":memory:")
    try:
        conn.execute("attach ? as wh (read_only)", [str(warehouse)])
        open_from = first_open_year(day) if day is not None else _built_first_open_year(conn)
        for table in published_tables(conn):
            columns = {r[0] for r in conn.execute(
                "select column_name from duckdb_columns() where database_name = 'wh' "
                "and schema_name = ? and table_name = ?", [PUBLISHED_SCHEMA, table]).fetchall()}  # fmt: skip
            # every table that counts persons has the year they are counted in
            if (
                "year" in columns
                and conn.execute(
                    f'select count(*) from wh.{PUBLISHED_SCHEMA}."{table}" where year >= ?',
                    [open_from],
                ).fetchone()[0]
            ):
                return True
        return False
    finally:
        conn.close()


def _built_first_open_year(conn: duckdb.DuckDBPyConnection) -> int:
    built = conn.execute(
        "select count(*) from duckdb_tables() where database_name = 'wh' "
        "and schema_name = 'main' and table_name = 'dbt_run_date'"
    ).fetchone()[0]
    if built:
        return conn.execute("select first_open_year from wh.main.dbt_run_date").fetchone()[0]
    return first_open_year(run_date())


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
