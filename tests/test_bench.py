"""The benchmark's own accounting (bench/pipeline.py): what it reports per stage must be true.

Speed itself is never asserted here (docs/performance.md holds the figures); these tests only
check that the script counts the CPU time of the processes it starts.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "pipeline.py"

BUSY_CHILD = """
import time
while time.process_time() < 0.6:
    pass
"""


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _module("bench_pipeline", BENCH)


def test_the_cpu_of_a_finished_child_process_is_counted(bench):
    before = bench.tree_cpu_seconds()
    subprocess.run([sys.executable, "-c", BUSY_CHILD], check=True)
    # the child burnt 0.6 s by its own clock; the kernel's tick accounting may round it down
    assert bench.tree_cpu_seconds() - before >= 0.5


def test_the_cpu_of_a_running_child_process_is_counted(bench):
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            BUSY_CHILD + "\nimport sys\nsys.stdout.write('x')\nsys.stdout.flush()\ninput()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        before = bench.tree_cpu_seconds()
        assert child.stdout.read(1) == b"x"  # the child has burnt its CPU and waits, unreaped
        during = bench.tree_cpu_seconds()
        assert during - before >= 0.4
    finally:
        child.communicate(b"\n")
    # reaped: its CPU moves to this process's children's times, and is not counted twice
    assert bench.tree_cpu_seconds() - during < 0.3


def test_cpu_between_two_moments_takes_the_nearest_samples(bench):
    sampler = bench.RssSampler()
    sampler.cpu = [(100.0, 10.0, 1.0), (100.2, 10.3, 1.0), (102.0, 13.9, 1.5), (102.2, 14.2, 1.5)]
    assert sampler.cpu_between(100.19, 102.05) == {"cpu_s": 3.6, "cores": 2.0, "steal_s": 0.5}


def test_the_cores_of_every_window_come_from_the_samples_in_it(bench):
    sampler = bench.RssSampler()
    # 0.5 s apart: two cores busy for 2 s, then one core for 2 s, then 0.4 s of nothing
    times = [100.0 + 0.5 * i for i in range(10)]
    cpu = [0.0, 1.0, 2.0, 3.0, 4.0, 4.5, 5.0, 5.5, 6.0, 6.0]
    sampler.cpu = [(t, c, 0.0) for t, c in zip(times, cpu, strict=True)]
    sampler.cpu.insert(0, (99.0, -5.0, 0.0))  # before the stage: not counted
    assert sampler.cores_over_time(100.0, 104.5) == [2.0, 1.0, 0.0]
    # a tail shorter than a sample period is left out, not divided by almost nothing
    assert sampler.cores_over_time(100.0, 102.2) == [2.0]
    # a sampler that stalled for 5.5 s: that stretch is one window, the timeline goes on
    sampler.cpu = [(0.0, 0.0, 0.0), (0.5, 1.0, 0.0), (6.0, 3.0, 0.0), (6.5, 4.0, 0.0)]
    assert sampler.cores_over_time(0.0, 6.5) == [2.0, 0.36, 2.0]


def test_stolen_time_is_read_from_the_machine(bench):
    first = bench.steal_seconds()
    assert first >= 0.0
    assert bench.steal_seconds() >= first


def _run(rows: int, ratio: float, wall: float, nightly: float, rss: float) -> dict:
    return {"requested_rows": rows, "rows": rows - 7, "job_over_floor": ratio, "floor_s": 10.0,
            "full": {"wall_s": wall}, "nightly_over_full": nightly, "peak_rss_mb": rss}  # fmt: skip


def test_the_summary_takes_the_median_of_each_size(bench):
    runs = [
        _run(1000, 6.0, 60.0, 0.4, 900.0),
        _run(10_000, 7.3, 146.0, 0.20, 2800.0),
        _run(10_000, 5.7, 114.0, 0.24, 3000.0),
        _run(10_000, 6.1, 122.0, 0.22, 2900.0),
    ]
    summary = bench.summarise(runs)
    big = summary["sizes"]["10000"]
    assert big["runs"] == 3
    assert big["job_over_floor"] == [7.3, 5.7, 6.1]
    assert big["job_over_floor_median"] == 6.1  # not the mean (6.37), not the last run
    assert big["full_wall_s_median"] == 122.0
    assert big["nightly_over_full_median"] == 0.22
    assert big["peak_rss_mb_max"] == 3000.0  # the worst run, not a typical one
    assert summary["sizes"]["1000"]["runs"] == 1
    # scaling on the generated rows and the median full-job times
    assert summary["scaling"] == {"rows_ratio": round(9993 / 993, 1), "time_ratio": 2.0}


def test_one_size_has_no_scaling(bench):
    assert "scaling" not in bench.summarise([_run(1000, 6.0, 60.0, 0.4, 900.0)])


def test_the_dbt_split_names_the_slowest_nodes(bench, tmp_path):
    target = tmp_path / "dbt" / "target"
    target.mkdir(parents=True)
    results = [("model.p.a", 1.0), ("test.p.t1.abc", 3.5), ("model.p.b", 4.0),
               ("unit_test.p.a.u", 0.25), ("model.p.c", 2.0)]  # fmt: skip
    (target / "run_results.json").write_text(
        json.dumps({"results": [{"unique_id": u, "execution_time": t} for u, t in results]})
    )
    assert bench.dbt_split(tmp_path) == {
        "dbt_models_s": 7.0,
        "dbt_tests_s": 3.8,  # 3.75, rounded
        "dbt_slowest": [["b", 4.0], ["t1", 3.5], ["c", 2.0]],  # a test by its name, not its hash
    }


NIGHTS = BENCH.parent / "nights.py"


@pytest.fixture(scope="module")
def nights():
    return _module("bench_nights", NIGHTS)


def test_row_groups_are_counted_per_table(nights, tmp_path):
    import duckdb

    database = tmp_path / "w.duckdb"
    conn = duckdb.connect(str(database), config={"threads": 1})
    conn.execute("create schema s")
    # DuckDB's row groups hold 122,880 rows: 300,000 rows in one insert are three
    conn.execute("create table s.big as select range as i from range(300000)")
    # ... and each small insert that commits on its own lands in the same last row group
    conn.execute("create table s.small (i integer)")
    for i in range(5):
        conn.execute("insert into s.small values (?)", [i])
    conn.close()
    assert nights.row_groups(database, ["s.big", "s.small"]) == {
        "s.big": {"rows": 300000, "row_groups": 3},
        "s.small": {"rows": 5, "row_groups": 1},
    }


def test_the_incremental_models_come_from_the_manifest(nights, tmp_path):
    target = tmp_path / "dbt" / "target"
    target.mkdir(parents=True)
    node = {"resource_type": "model", "schema": "intermediate"}
    (target / "manifest.json").write_text(json.dumps({"nodes": {
        "model.p.a": {**node, "alias": "a", "config": {"materialized": "incremental"}},
        "model.p.b": {**node, "alias": "b", "config": {"materialized": "table"}},
        "test.p.c": {**node, "resource_type": "test", "alias": "c",
                     "config": {"materialized": "incremental"}},
    }}))  # fmt: skip
    assert nights.incremental_models(tmp_path) == ["intermediate.a"]


def test_a_later_night_delivers_new_tickets_for_another_member(bench, tmp_path):
    import duckdb

    (tmp_path / "institutions.csv").write_text("code,name\nm_a,A\nm_b,B\n")
    first = bench.add_nightly_delivery(tmp_path, 0.01, 1000)
    later = bench.add_nightly_delivery(tmp_path, 0.01, 1000, night=3)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.csv")
                   if p.parent != tmp_path)  # fmt: skip
    assert (first, later) == (10, 10)
    assert files == ["landing/m_a/m_a_tickets_nightly.csv", "landing/m_b/m_b_tickets_nightly3.csv"]
    ids = (
        duckdb.connect()
        .execute(f"select count(distinct ticket_id) from read_csv('{tmp_path}/landing/*/*.csv')")
        .fetchall()
    )
    assert ids == [(20,)]
