"""Jobs, schedules and the landing sensor."""

import os
import time

import dagster as dg

from publieksdata.settings import data_home

sector_refresh = dg.define_asset_job(
    "sector_refresh",
    selection=dg.AssetSelection.all(),
    description="Take pending deliveries, validate, pseudonymise, build, test and publish.",
    executor_def=dg.in_process_executor,  # one writer to DuckDB at a time
)

delivery_intake = dg.define_asset_job(
    "delivery_intake",
    selection=dg.AssetSelection.assets(
        ["intake", "deliveries"],
        ["pseudo", "tickets"],
        ["pseudo", "events"],
        ["perturbation", "person_record_keys"],
    ),
    description="Intake and privacy for deliveries in landing/ (launched per file by the sensor); "
    "the nightly refresh builds and publishes.",
    executor_def=dg.in_process_executor,
)

nightly_sector_refresh = dg.ScheduleDefinition(
    name="nightly_sector_refresh",
    job=sector_refresh,
    cron_schedule="0 2 * * *",
    execution_timezone="Europe/Amsterdam",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


def settle_seconds() -> float:
    """A landing file must be this old (unchanged) before the sensor takes it: uploads finish."""
    return float(os.environ.get("PUBLIEKSDATA_LANDING_SETTLE_SECONDS", "30"))


@dg.sensor(
    job=delivery_intake,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="One intake run per new file in landing/<code>/ (once it has stopped changing).",
)
def landing_sensor(context: dg.SensorEvaluationContext):
    from ingest.intake import plain_upload

    landing = data_home().landing
    if not landing.exists():
        return dg.SkipReason("landing/ does not exist yet")
    now = time.time()
    requests = []
    for path in sorted(landing.glob("*/*")):
        if not plain_upload(path) or path.parent.is_symlink():
            continue  # hidden, a folder, or a symbolic link (never followed: ingest/intake.py)
        stat = path.stat()
        if now - stat.st_mtime < settle_seconds():
            continue  # still being uploaded, perhaps
        relative = str(path.relative_to(landing))
        requests.append(
            dg.RunRequest(
                run_key=f"{relative}:{stat.st_size}:{stat.st_mtime_ns}",
                run_config={"ops": {"intake__deliveries": {"config": {"files": [relative]}}}},
                tags={"publieksdata/delivery": relative},
            )
        )
    return requests or dg.SkipReason("no settled files waiting in landing/")


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
