"""dbt in a warm process (orchestration/dbt_warm.py): the launcher hands a build over to a process
that imported dbt beforehand, and falls back to dbt itself when there is none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestration import dbt_warm
from orchestration.project import DBT_PROJECT_DIR

LAUNCHER = Path(sys.executable).parent / dbt_warm.LAUNCHER
DBT = Path(sys.executable).parent / "dbt"


@pytest.fixture(autouse=True)
def _no_warm_left(monkeypatch):
    monkeypatch.delenv(dbt_warm.ENV, raising=False)
    yield
    dbt_warm.stop()


def _ready(warm: dbt_warm.Warm, timeout: float = 120) -> None:
    """Wait until the warm process listens (it has imported dbt)."""
    deadline = time.monotonic() + timeout
    while not warm.socket.exists():
        assert warm.process.poll() is None, f"the warm process ended ({warm.process.returncode})"
        assert time.monotonic() < deadline, "the warm process did not get ready"
        time.sleep(0.05)


def _launch(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(LAUNCHER), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
                          **kwargs)  # fmt: skip


def test_the_launcher_is_installed_and_is_the_jobs_dbt(home):
    from orchestration.definitions import defs

    assert LAUNCHER.is_file()
    assert dbt_warm.launcher() == str(LAUNCHER)
    assert defs.resources["dbt"].dbt_executable == str(LAUNCHER)


def test_without_a_warm_process_the_launcher_is_dbt(tmp_path, monkeypatch):
    plain = subprocess.run([str(DBT), "--version"], capture_output=True, text=True, timeout=300)
    assert _launch("--version").stdout == plain.stdout
    # a socket nobody listens on (a warm process gone): dbt itself, nothing lost
    monkeypatch.setenv(dbt_warm.ENV, str(tmp_path / "gone.sock"))
    done = _launch("--version")
    assert done.returncode == 0 and done.stdout == plain.stdout


def test_a_build_runs_in_the_warm_process_with_the_launchers_output_and_status(tmp_path):
    missing = tmp_path / "no-project"
    plain = subprocess.run([str(DBT), "parse", "--project-dir", str(missing)],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert plain.returncode != 0

    warm = dbt_warm.start()
    assert os.environ[dbt_warm.ENV] == str(warm.socket)
    _ready(warm)
    done = _launch("parse", "--project-dir", str(missing))
    # the warm process ran it: its socket is gone, it exited as having served a build
    assert warm.process.wait(timeout=30) == dbt_warm.SERVED
    assert warm.served() and not warm.socket.exists()
    # dbt's exit status and its output came back through the launcher
    assert done.returncode == plain.returncode
    assert "does not exist" in plain.stderr
    assert (done.stdout, done.stderr) == (plain.stdout, plain.stderr)
    # one build per warm process: the next launch is dbt itself
    again = _launch("--version")
    assert again.returncode == 0 and "Core" in again.stdout
    assert dbt_warm.stop() is warm
    assert dbt_warm.ENV not in os.environ
    assert not warm.folder.exists()


def test_killing_the_launcher_kills_the_build(tmp_path):
    """A job killed mid-build (the crash tests' dbt.mid_build) kills the launcher: the warm
    process running the build must die with it, as dbt itself would."""
    warm = dbt_warm.start()
    _ready(warm)
    env = {**os.environ, "PUBLIEKSDATA_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
           "DBT_LOG_PATH": str(tmp_path / "logs"), "DBT_TARGET_PATH": str(tmp_path / "target")}  # fmt: skip
    launcher = subprocess.Popen(
        [str(LAUNCHER), "show", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
         str(DBT_PROJECT_DIR), "--inline", "select sum(i * i) from range(100000000000) t(i)"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while warm.socket.exists():  # until the warm process took the build
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)
    assert warm.process.poll() is None  # busy with the build
    launcher.kill()
    launcher.wait()
    assert warm.process.wait(timeout=30) == -signal.SIGKILL
    assert not warm.served()


def test_an_unused_warm_process_ends_by_itself(monkeypatch):
    monkeypatch.setenv(dbt_warm.IDLE_ENV, "0.5")
    warm = dbt_warm.start()
    assert warm.process.wait(timeout=120) == dbt_warm.UNUSED
    assert not warm.folder.exists()  # its socket and folder removed
    # and stop() of one still waiting ends it
    monkeypatch.setenv(dbt_warm.IDLE_ENV, "3600")
    waiting = dbt_warm.start()
    _ready(waiting)
    assert dbt_warm.stop() is waiting
    assert waiting.process.poll() is not None and not waiting.folder.exists()


def test_the_jobs_dbt_build_runs_in_the_warm_process(home, monkeypatch):
    """sector_refresh starts a warm process in its intake step and its dbt step's build runs
    there; afterwards nothing of it is left (process, socket, environment)."""
    from conftest import deliver, write_minimal_sector
    from test_intake import tickets_csv

    from publieksdata.pipeline import run_job

    write_minimal_sector(home)
    deliver(home, "th_a", "tickets.csv", tickets_csv(20))
    started = []
    real = dbt_warm.start

    def start_and_wait() -> dbt_warm.Warm:  # ready before dbt asks, whatever the machine's load
        warm = real()
        _ready(warm)
        started.append(warm)
        return warm

    monkeypatch.setattr(dbt_warm, "start", start_and_wait)
    run_job(home)
    [warm] = started
    assert warm.served()
    assert dbt_warm._current is None and dbt_warm.ENV not in os.environ
    assert not warm.folder.exists()
