"""Process settings every entry point (CLI, dagster dev, tests) derives from the data home."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from publieksdata.settings import DataHome, data_home

# One run at a time: runs launched by the sensor, the schedule or the UI queue up instead of
# meeting at the DuckDB file. (`publieksdata run` executes in-process, outside the queue: the
# warehouse lock, publieksdata/locking.py, makes it and a queued run wait for each other.)
# Dagster's SQLite storage in the same files, its event log's connections kept open
# (orchestration/dagster_storage.py).
INSTANCE_CONFIG = """\
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 1
storage:
  custom:
    module: orchestration.dagster_storage
    class: PublieksdataSqliteStorage
    config:
      base_dir:
        env: DAGSTER_HOME
"""
# what earlier versions wrote: replaced by the above, as long as nobody has edited it
_EARLIER_INSTANCE_CONFIGS = (
    """\
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 1
""",
)


def configure_environment(home: DataHome | None = None) -> DataHome:
    """Point dbt and Dagster at the data home: one DuckDB path from one setting for both."""
    home = home or data_home()
    os.environ["PUBLIEKSDATA_HOME"] = str(home.root)
    os.environ["PUBLIEKSDATA_WAREHOUSE"] = str(home.warehouse)
    os.environ["DBT_LOG_PATH"] = str(home.dbt / "logs")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    if not os.environ.get("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str(home.dagster)
    home.dagster.mkdir(parents=True, exist_ok=True)
    instance_config = home.dagster / "dagster.yaml"
    if os.environ["DAGSTER_HOME"] == str(home.dagster) and (
        not instance_config.exists() or instance_config.read_text() in _EARLIER_INSTANCE_CONFIGS
    ):
        instance_config.write_text(INSTANCE_CONFIG)
    put_dbt_on_path()
    return home


def put_dbt_on_path() -> None:
    """dbt is installed beside this Python: find it even when the virtualenv is not activated
    (dagster-dbt looks for ``dbt`` on PATH, also when it only parses the project)."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
