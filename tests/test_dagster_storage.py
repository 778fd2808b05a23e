"""The data home's Dagster instance: Dagster's SQLite storage with the event log's engines kept
(orchestration/dagster_storage.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import dagster as dg
import pytest
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._serdes import serialize_value

import orchestration.dagster_storage as storage_module
from orchestration.dagster_storage import KEPT_ENGINES, PooledSqliteEventLogStorage
from orchestration.environment import INSTANCE_CONFIG, configure_environment


@dg.asset
def counted() -> int:
    return 1


@dg.asset_check(asset=counted)
def counted_is_one() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def _run(instance) -> str:
    result = dg.materialize([counted, counted_is_one], instance=instance)
    assert result.success
    return result.run_id


@pytest.fixture
def dagster_home(home, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    configure_environment(home)
    return home.dagster


def test_a_new_data_home_gets_the_pooled_event_log_in_dagsters_own_files(dagster_home):
    assert (dagster_home / "dagster.yaml").read_text() == INSTANCE_CONFIG
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        run_id = _run(instance)
        types = [e.dagster_event.event_type_value for e in instance.all_logs(run_id)
                 if e.dagster_event]  # fmt: skip
        assert {"ASSET_MATERIALIZATION_PLANNED", "ASSET_CHECK_EVALUATION_PLANNED",
                "ASSET_CHECK_EVALUATION", "PIPELINE_SUCCESS"} <= set(types)  # fmt: skip
        assert instance.get_latest_materialization_event(dg.AssetKey("counted")) is not None
    # the files are Dagster's own: its default event log reads what this one wrote
    assert (dagster_home / "history" / "runs" / f"{run_id}.db").exists()
    plain = SqliteEventLogStorage(str(dagster_home / "history" / "runs"))
    assert [e.dagster_event.event_type_value for e in plain.get_logs_for_run(run_id)
            if e.dagster_event] == types  # fmt: skip


def test_events_reuse_an_engine_per_database_and_keep_at_most_a_few(dagster_home, monkeypatch):
    created = []
    real = storage_module.create_engine

    def counting(*args, **kwargs):
        created.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(storage_module, "create_engine", counting)
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        _run(instance)
        first = len(created)
        run_ids = [_run(instance) for _ in range(KEPT_ENGINES + 2)]
        # Dagster's own opens an engine per statement group: dozens per run. Here: the run's
        # database, once.
        assert len(created) - first == KEPT_ENGINES + 2
        assert len(storage._engines) <= KEPT_ENGINES
        # a run whose engine was let go is read again with a new one
        assert instance.all_logs(run_ids[0])
    assert not storage._engines  # the instance's close disposes them


def test_another_process_sees_every_event_this_one_stores(dagster_home):
    # the other process builds its instance as a run worker does: from this one's serialised
    # reference, which names the storage class and its configuration
    reader = textwrap.dedent(
        """
        import sys, dagster as dg
        from dagster._serdes import deserialize_value
        from orchestration.dagster_storage import PooledSqliteEventLogStorage
        with dg.DagsterInstance.from_ref(deserialize_value(sys.stdin.read())) as instance:
            assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
            print(len(instance.all_logs(sys.argv[1])))
        """
    )

    with dg.DagsterInstance.get() as instance:
        ref = serialize_value(instance.get_ref())

        def count_elsewhere(run_id: str) -> int:
            out = subprocess.run([sys.executable, "-c", reader, run_id], input=ref, check=True,
                                 capture_output=True, text=True).stdout  # fmt: skip
            return int(out.strip().splitlines()[-1])

        run_id = _run(instance)
        stored = len(instance.all_logs(run_id))
        assert count_elsewhere(run_id) == stored
        instance.report_engine_event("one more", instance.get_run_by_id(run_id))
        assert count_elsewhere(run_id) == stored + 1


def test_a_wipe_deletes_the_runs_and_the_instance_still_works(dagster_home):
    with dg.DagsterInstance.get() as instance:
        run_id = _run(instance)
        instance.wipe()
        assert not (dagster_home / "history" / "runs" / f"{run_id}.db").exists()
        assert not instance.all_logs(run_id)
        assert instance.all_logs(_run(instance))


def test_an_earlier_untouched_dagster_yaml_is_upgraded_and_an_edited_one_kept(home, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    config = home.dagster / "dagster.yaml"
    home.dagster.mkdir(parents=True, exist_ok=True)
    earlier = "telemetry:\n  enabled: false\nconcurrency:\n  runs:\n    max_concurrent_runs: 1\n"
    config.write_text(earlier)
    configure_environment(home)
    assert config.read_text() == INSTANCE_CONFIG
    edited = earlier + "run_monitoring:\n  enabled: true\n"
    config.write_text(edited)
    configure_environment(home)
    assert config.read_text() == edited
