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
