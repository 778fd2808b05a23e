"""Dagster as the control room: the landing sensor, checks on deliveries, the UI's GraphQL API."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from conftest import deliver, write_minimal_sector
from test_intake import tickets_csv

REPO = Path(__file__).resolve().parent.parent


def test_sensor_requests_one_run_per_delivery_and_the_run_loads_it(home, monkeypatch):
    from orchestration import dbt_warm
    from orchestration.definitions import defs

    monkeypatch.setenv("PUBLIEKSDATA_LANDING_SETTLE_SECONDS", "0")
    # no dbt build follows in these runs: no warm dbt process for one (orchestration/dbt_warm.py)
    warmed = []
    monkeypatch.setattr(dbt_warm, "start", lambda *a: warmed.append(1))
    write_minimal_sector(home)
    deliver(home, "th_a", "tickets.csv", tickets_csv(20))
    deliver(home, "mu_b", "broken.csv", tickets_csv(5).replace("price", "amount"))
    sensor = defs.resolve_sensor_def("landing_sensor")
    with dg.instance_for_test() as instance:
        requests = sensor(dg.build_sensor_context(instance=instance))
        assert sorted(r.tags["publieksdata/delivery"] for r in requests) == [
            "mu_b/broken.csv",
            "th_a/tickets.csv",
        ]
        job = defs.resolve_job_def("delivery_intake")
        good = next(r for r in requests if r.tags["publieksdata/delivery"] == "th_a/tickets.csv")
        result = job.execute_in_process(run_config=good.run_config, instance=instance)
        assert result.success
        # only the requested file was taken; the other waits for its own run
        assert (home.landing / "mu_b" / "broken.csv").exists()
        bad = next(r for r in requests if r.tags["publieksdata/delivery"] == "mu_b/broken.csv")
        result = job.execute_in_process(run_config=bad.run_config, instance=instance)
        assert result.success  # a rejected delivery does not fail the run ...
        checks = [
            e.asset_check_evaluation_data
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
        [check] = checks
        assert not check.passed  # ... it fails the check, with the report attached
        text = json.dumps({k: str(v.value) for k, v in check.metadata.items()})
        assert "required_column" in text and "broken.csv" in text
        assert "visitor" not in text
    assert warmed == []
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    assert conn.execute("select count(*) from pseudo.tickets").fetchone()[0] == 20
    conn.close()


def test_sensor_waits_for_a_file_to_settle(home, monkeypatch):
    from orchestration.definitions import defs

    monkeypatch.setenv("PUBLIEKSDATA_LANDING_SETTLE_SECONDS", "3600")
    write_minimal_sector(home)
    deliver(home, "th_a", "tickets.csv", tickets_csv(2))
    with dg.instance_for_test() as instance:
        result = defs.resolve_sensor_def("landing_sensor")(
            dg.build_sensor_context(instance=instance)
        )
    assert isinstance(result, dg.SkipReason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


QUERY = """
{ repositoriesOrError { ... on RepositoryConnection { nodes {
    jobs { name }
    schedules { name cronSchedule executionTimezone }
    sensors { name }
    assetNodes { assetKey { path } groupName hasAssetChecks }
} } } }
"""


@pytest.fixture
def webserver(home):
    from orchestration.environment import configure_environment

    configure_environment(home)  # the Dagster instance folder and its dagster.yaml
    port = _free_port()
    env = dict(os.environ)
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(url + "/server_info", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("dagster-webserver exited") from None
                time.sleep(1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _graphql(url: str, query: str) -> dict:
    req = urllib.request.Request(
        url + "/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    deadline = time.time() + 120
    while True:
        data = json.loads(urllib.request.urlopen(req, timeout=30).read())
        repos = data["data"]["repositoriesOrError"]
        if repos.get("nodes") or time.time() > deadline:  # the code location may still load
            return data
        time.sleep(2)


def test_the_ui_shows_every_asset_check_sensor_and_schedule(webserver):
    data = _graphql(webserver, QUERY)
    [repo] = data["data"]["repositoriesOrError"]["nodes"]
    assets = {"/".join(a["assetKey"]["path"]): a for a in repo["assetNodes"]}
    for key in ("intake/deliveries", "pseudo/tickets", "pseudo/events", "reference/pc4",
                "marts/fct_tickets", "published/benchmark", "release"):  # fmt: skip
        assert key in assets, key
    assert assets["intake/deliveries"]["hasAssetChecks"]
    assert assets["published/benchmark"]["hasAssetChecks"]  # dbt tests as asset checks
    assert assets["published/benchmark"]["groupName"] == "benchmark"
    assert assets["intake/deliveries"]["groupName"] == "intake"
    assert {s["name"] for s in repo["sensors"]} == {"landing_sensor"}
    schedules = {s["name"]: s for s in repo["schedules"]}
    assert schedules["nightly_sector_refresh"]["cronSchedule"] == "0 2 * * *"
    assert schedules["nightly_sector_refresh"]["executionTimezone"] == "Europe/Amsterdam"
    assert "daily_retention_purge" in schedules
    assert {"sector_refresh", "delivery_intake", "retention_purge"} <= {
        j["name"] for j in repo["jobs"]
    }


def test_a_failing_dbt_test_blocks_publication(home, monkeypatch):
    """A failed test of a published mart means no new release; the run says which check failed."""
    from exports.release import current_release
    from publieksdata.pipeline import run_job
    from publieksdata.synthetic import generate_sector

    generate_sector(home.root, institutions=6, persons=800, years=1, seed=3)
    run_job(home)
    first = current_release(home)
    assert first is not None
    # corrupt a source behind the marts: one member twice in the registry table
    conn = duckdb.connect(str(home.warehouse))
    conn.execute("insert into reference.institutions select * from reference.institutions limit 1")
    conn.close()
    from orchestration.definitions import defs

    job = defs.resolve_job_def("sector_refresh")
    selection = [
        k for k in job.asset_layer.asset_graph.get_all_asset_keys()
        if k.path[0] not in ("reference", "intake", "pseudo", "perturbation")
    ]  # fmt: skip
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance, asset_selection=selection, raise_on_error=False
        )
    assert not result.success
    failed_checks = [
        e.asset_check_evaluation_data.check_name
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and not e.asset_check_evaluation_data.passed
    ]
    assert failed_checks, "the failing dbt test shows as a failed asset check"
    assert not any(
        e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key == dg.AssetKey("release")
        for e in result.all_events
    )
    assert current_release(home) == first


def test_release_metadata_counts_rows_and_suppressed_cells(tmp_path):
    from orchestration.assets.publication import _table_summary

    conn = duckdb.connect(str(tmp_path / "marts.duckdb"))
    conn.execute(
        "create table benchmark as select * from (values (12, false), (null, true)) t(n_persons, suppressed)"
    )
    conn.execute("create table market_sector as select 1 as x")
    conn.close()
    assert _table_summary(tmp_path) == {
        "benchmark": {"rows": 2, "rows_with_suppressed_cells": 1},
        "market_sector": {"rows": 1, "rows_with_suppressed_cells": None},
    }


def test_the_dbt_project_finds_dbt_without_an_activated_virtualenv():
    """dagster-dbt looks for ``dbt`` on PATH, also just to parse the project. Importing the
    project module alone (an asset module imported first, before anything configured the
    environment) must find this environment's dbt: CI once failed on it."""
    code = "import shutil, orchestration.project; print(shutil.which('dbt'))"
    env = {"HOME": os.environ.get("HOME", "/tmp"), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(REPO)}  # fmt: skip
    found = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.strip() == str(Path(sys.executable).parent / "dbt")
