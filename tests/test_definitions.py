"""The Dagster definitions load as `dagster dev -w workspace.yaml` loads them."""

import dagster as dg


def test_definitions_hold_every_layer(home):
    from orchestration.definitions import defs

    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    for expected in ("intake/deliveries", "pseudo/tickets", "pseudo/events", "reference/pc4",
                     "reference/institutions", "marts/fct_tickets", "published/benchmark", "release"):  # fmt: skip
        assert expected in keys
    checks = {c.name for c in repo.asset_graph.asset_check_keys}
    assert any(name.startswith("k_anonymity") for name in checks)
    # the uniqueness of tickets (pseudo.tickets has no primary key) is an asset check, not an
    # observation outside the check selection as a dbt source test would be
    assert any(c.name.startswith("accepted_values_int_ticket_key_repeats_repeated_ticket_ids")
               for c in repo.asset_graph.asset_check_keys)  # fmt: skip
    schedule = defs.resolve_schedule_def("nightly_sector_refresh")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "Europe/Amsterdam"
    assert defs.resolve_sensor_def("landing_sensor") is not None
    release = repo.asset_graph.get(dg.AssetKey("release"))
    assert dg.AssetKey(["published", "benchmark"]) in release.parent_keys


def test_workspace_points_at_the_definitions():
    from pathlib import Path

    import yaml

    ws = yaml.safe_load((Path(__file__).parent.parent / "workspace.yaml").read_text())
    module = ws["load_from"][0]["python_module"]
    assert module["module_name"] == "orchestration.definitions"
    assert module["attribute"] == "defs"


def test_retention_purge_job_runs(home):
    from orchestration.definitions import defs

    assert defs.resolve_schedule_def("daily_retention_purge").execution_timezone == (
        "Europe/Amsterdam"
    )
    result = defs.resolve_job_def("retention_purge").execute_in_process()
    assert result.success


def test_the_dbt_resource_spends_no_run_on_dbt_version_or_an_adapter(home, monkeypatch):
    """The job's dbt resource knows this environment's dbt-core version without running
    ``dbt --version`` and opens no adapter in Dagster's process (orchestration/project.py)."""
    import importlib.metadata

    import dagster_dbt.core.resource as resource_module

    from orchestration.definitions import defs
    from orchestration.project import DbtCli

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"dbt resource ran {args[0]!r} to learn the version")

    monkeypatch.setattr(resource_module, "check_output", no_subprocess)
    dbt = defs.resources["dbt"]
    assert isinstance(dbt, DbtCli)
    assert str(dbt._cli_version) == importlib.metadata.version("dbt-core")
    invocation = dbt.cli(["parse", "--quiet"], target_path=home.dbt / "target")
    assert invocation.wait().is_successful()
    assert invocation.adapter is None


def test_another_dbt_is_still_asked_its_version(tmp_path):
    """Only this environment's own ``dbt`` skips ``dbt --version``: any other executable (dbt
    Fusion's ``dbtf``, a dbt elsewhere) is asked, as dagster-dbt does."""
    from orchestration.project import DbtCli, dbt_project

    fusion = tmp_path / "dbtf"
    fusion.write_text("#!/bin/sh\necho 'dbt-fusion 2.0.0-preview.1'\n")
    fusion.chmod(0o755)
    dbt = DbtCli(project_dir=dbt_project, dbt_executable=str(fusion))
    assert dbt._cli_version.major == 2
