"""The sector refresh job, its nightly schedule and the landing sensor."""

import hashlib

import dagster as dg

from publieksdata.settings import data_home

sector_refresh = dg.define_asset_job(
    "sector_refresh",
    selection=dg.AssetSelection.all(),
    description="Take pending deliveries, validate, pseudonymise, build, test and publish.",
    executor_def=dg.in_process_executor,  # one writer to DuckDB at a time
)

nightly_sector_refresh = dg.ScheduleDefinition(
    name="nightly_sector_refresh",
    job=sector_refresh,
    cron_schedule="0 2 * * *",
    execution_timezone="Europe/Amsterdam",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


@dg.sensor(job=sector_refresh, minimum_interval_seconds=60)
def landing_sensor(context: dg.SensorEvaluationContext):
    """Requests a refresh when files wait in landing/ (one run per distinct set of files)."""
    landing = data_home().landing
    files = sorted(
        f"{p.relative_to(landing)}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
        for p in landing.glob("*/*") if p.is_file() and not p.name.startswith(".")
    ) if landing.exists() else []  # fmt: skip
    if not files:
        return dg.SkipReason("no files waiting in landing/")
    run_key = hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]
    return dg.RunRequest(run_key=run_key, tags={"trigger": "landing", "files": str(len(files))})


@dg.op(description="Deletes rejected files and reports older than the retention period.")
def purge_rejected_files(context: dg.OpExecutionContext) -> None:
    from ingest.retention import purge_rejected, retention_days

    purged = purge_rejected(data_home())
    context.add_output_metadata({"purged_files": purged, "retention_days": retention_days()})


@dg.job(description="Purge rejected deliveries past their retention period (default 30 days).")
def retention_purge():
    purge_rejected_files()


daily_retention_purge = dg.ScheduleDefinition(
    name="daily_retention_purge",
    job=retention_purge,
    cron_schedule="30 3 * * *",
    execution_timezone="Europe/Amsterdam",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
