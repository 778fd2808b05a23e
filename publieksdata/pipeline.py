"""The main job, run in-process through Dagster: the same job the nightly schedule runs."""

from __future__ import annotations

import logging

import duckdb

from exports.release import current_release
from publieksdata.settings import DataHome, PublieksdataError

log = logging.getLogger(__name__)


def run_job(home: DataHome, *, force_release: bool = False, full_refresh: bool = False,
            failure_traces: bool = True) -> dict:  # fmt: skip
    """Materialise the ``sector_refresh`` job in-process; raise PublieksdataError on failure.

    Holds the warehouse lock for the whole run (publieksdata/locking.py): a second job on the
    same data home waits for this one, or stops with "in use". Without ``force_release`` a run
    whose published content equals the current release keeps that release (``release_unchanged``
    in the summary). ``full_refresh`` rebuilds every dbt model from scratch instead of only
    the institutions whose data changed. Without ``failure_traces`` the console shows Dagster's
    warnings but not its errors with their stack traces (the command line says what failed in
    one line; the run's event log keeps the traces).
    """
    from publieksdata.locking import warehouse_lock

    with warehouse_lock(home, "publieksdata run"):
        before = current_release(home)
        _execute(home, force_release, full_refresh, failure_traces)
        out = summary(home)
    out["release_unchanged"] = before is not None and out["release"] == str(before)
    return out


def _execute(home: DataHome, force_release: bool, full_refresh: bool = False,
             failure_traces: bool = True) -> None:  # fmt: skip
    from orchestration.environment import configure_environment

    configure_environment(home)
    from orchestration.project import prepare_manifest

    prepare_manifest()
    import dagster as dg

    from orchestration.definitions import defs

    job = defs.resolve_job_def("sector_refresh")
    if not failure_traces:
        job = job.with_logger_defs({"console": _logger_definition()})
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={
                "loggers": {"console": {"config": {"log_level": "WARNING"}}},
                "ops": {
                    "release": {"config": {"force": force_release}},
                    "dbt_models": {"config": {"full_refresh": full_refresh}},
                },
            },
        )
    if not result.success:
        failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        if failures:
            step = failures[0].step_key
            err = failures[0].event_specific_data.error
            message = _root_message(err)
            raise PublieksdataError(f"the job failed in step {step}: {message}")
        raise PublieksdataError("the job failed; open the Dagster UI for the run's log")


def _root_message(err) -> str:
    """A PublieksdataError's own text (written to be safe), else only the error's class and where
    to look: an unexpected error's message could quote a value from a delivery."""
    while err is not None and err.cause is not None:
        err = err.cause
    if err is None:
        return "unknown error"
    lines = [line.strip() for line in (err.message or "").splitlines() if line.strip()]
    first = lines[0] if lines else err.cls_name
    if err.cls_name == "PublieksdataError":
        return first.removeprefix("publieksdata.settings.PublieksdataError: ")
    if "dbt" in err.cls_name.lower():
        return "a dbt model or test failed; see dbt/target/dbt.log in the data home, or the run in the Dagster UI"
    return f"unexpected {err.cls_name}; see the run's log in the Dagster UI"


def summary(home: DataHome) -> dict:
    """What the demo prints: deliveries, tickets, persons, suppressed cells, the release."""
    rel = current_release(home)
    out: dict = {"data_home": str(home.root), "release": str(rel) if rel else None}
    if not home.warehouse.exists():
        return out
    try:
        conn = duckdb.connect(str(home.warehouse), read_only=True)
    except duckdb.IOException:
        raise PublieksdataError(
            "the warehouse is in use by a running job; ask again when it has finished"
        ) from None
    try:
        out["deliveries"] = dict(
            conn.execute(
                "select status, count(*) from intake.deliveries group by 1 order by 1"
            ).fetchall()
        )
        try:
            out["tickets"] = conn.execute("select count(*) from marts.fct_tickets").fetchone()[0]
            out["persons"] = conn.execute(
                "select count(distinct person_key) from marts.fct_tickets"
            ).fetchone()[0]
            out["institutions"] = conn.execute(
                "select count(distinct institution_code) from published.benchmark"
            ).fetchone()[0]
            out["benchmark_rows"] = conn.execute(
                "select count(*) from published.benchmark"
            ).fetchone()[0]
            out["suppressed_rows"] = conn.execute(
                "select count(*) from published.benchmark where suppressed"
            ).fetchone()[0]
        except duckdb.CatalogException:
            pass
    finally:
        conn.close()
    return out


def _console_logger(init_context) -> logging.Logger:
    """Dagster's console lines (stderr, the same format), without records of level ERROR and
    above: a failed step's record carries its stack trace."""
    import sys

    console = logging.Logger("dagster", init_context.logger_config["log_level"])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    handler.addFilter(lambda record: record.levelno < logging.ERROR)
    console.addHandler(handler)
    return console


def _logger_definition():
    import dagster as dg

    return dg.LoggerDefinition(
        _console_logger,
        config_schema={"log_level": dg.Field(str, is_required=False, default_value="WARNING")},
        description="Dagster's warnings on stderr; failures only in the event log",
    )
