"""The benchmark's own accounting (bench/pipeline.py): what it reports per stage must be true.

Speed itself is never asserted here (docs/performance.md holds the figures); these tests only
check that the script counts the CPU time of the processes it starts.
"""

from __future__ import annotations

import importlib.util
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


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_pipeline", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
