"""Everything Dagster loads: ``dagster dev -w workspace.yaml`` and ``publieksdata run``."""

from __future__ import annotations

import dagster as dg

from orchestration.environment import configure_environment

configure_environment()

from orchestration.assets.dbt import dbt_models  # noqa: E402
from orchestration.assets.intake import deliveries, reference_data  # noqa: E402
from orchestration.assets.publication import release  # noqa: E402
from orchestration.dbt_warm import launcher  # noqa: E402
from orchestration.jobs import (  # noqa: E402
    daily_retention_purge,
    delivery_intake,
    landing_sensor,
    nightly_sector_refresh,
    retention_purge,
    sector_refresh,
)
from orchestration.project import DbtCli, dbt_project  # noqa: E402

defs = dg.Definitions(
    assets=[reference_data, deliveries, dbt_models, release],
    jobs=[sector_refresh, delivery_intake, retention_purge],
    schedules=[nightly_sector_refresh, daily_retention_purge],
    sensors=[landing_sensor],
    resources={"dbt": DbtCli(project_dir=dbt_project, dbt_executable=launcher())},
    executor=dg.in_process_executor,
)
