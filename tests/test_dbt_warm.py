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


def test_a_build_in_the_warm_process_leaves_the_warehouse_closed_and_its_log_whole(tmp_path):
    """The warm process skips Python's teardown after a build (``_end_served``), so it must
    close the warehouse itself: DuckDB checkpoints it on closing, and a warehouse left to the
    process's end would keep the build's writes in its WAL. dbt's log must be complete."""
    import duckdb

    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: tiny\nversion: '1.0'\nprofile: tiny\nconfig-version: 2\n"
        "models:\n  tiny:\n    +materialized: table\n"
    )
    warehouse = tmp_path / "warehouse.duckdb"
    (project / "profiles.yml").write_text(
        f"tiny:\n  target: t\n  outputs:\n    t:\n      type: duckdb\n"
        f"      path: '{warehouse}'\n      threads: 1\n"
    )
    (project / "models" / "numbers.sql").write_text("select i from range(1000) t(i)")
    warm = dbt_warm.start()
    _ready(warm)
    logs = tmp_path / "logs"
    done = _launch("run", "--project-dir", str(project), "--profiles-dir", str(project),
                   "--log-path", str(logs), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert warm.process.wait(timeout=30) == dbt_warm.SERVED
    # the launcher returned after the warm process had exited: the file is closed, checkpointed
    assert not Path(f"{warehouse}.wal").exists()
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        written = conn.execute("select count(*), sum(i) from main.numbers").fetchone()
    assert written == (1000, 499500)
    assert "Command `dbt run` succeeded" in (logs / "dbt.log").read_text()


def test_an_unused_warm_process_ends_by_itself(tmp_path, monkeypatch):
    monkeypatch.setenv(dbt_warm.IDLE_ENV, "0.5")
    monkeypatch.setenv("PUBLIEKSDATA_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    warm = dbt_warm.start(dbt_warm.ParseAhead(DBT_PROJECT_DIR, DBT_PROJECT_DIR, tmp_path / "t"))
    assert warm.process.wait(timeout=120) == dbt_warm.UNUSED
    assert not warm.folder.exists()  # its socket, folder and parse ahead removed
    assert not (tmp_path / "t").exists()  # a parse ahead goes to a build's target, or nowhere
    # and stop() of one still waiting ends it
    monkeypatch.setenv(dbt_warm.IDLE_ENV, "3600")
    waiting = dbt_warm.start()
    _ready(waiting)
    assert dbt_warm.stop() is waiting
    assert waiting.process.poll() is not None and not waiting.folder.exists()


def _launcher_waiting_during_the_imports() -> tuple[dbt_warm.Warm, subprocess.Popen]:
    """A warm process frozen as soon as its socket is there, before it imported dbt's DuckDB
    (its shared library not yet mapped), and a launcher of ``dbt --version`` waiting for it."""
    warm = dbt_warm.start()
    _ready(warm)
    os.kill(warm.process.pid, signal.SIGSTOP)
    maps = Path(f"/proc/{warm.process.pid}/maps").read_text()
    assert "_duckdb" not in maps, "the socket came only after the imports"
    launcher = subprocess.Popen([str(LAUNCHER), "--version"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(0.5)
    assert launcher.poll() is None  # waiting in the warm process's queue
    return warm, launcher


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc")
def test_a_launcher_that_comes_during_the_imports_waits_for_them():
    warm, launcher = _launcher_waiting_during_the_imports()
    os.kill(warm.process.pid, signal.SIGCONT)
    out, _ = launcher.communicate(timeout=300)
    assert launcher.returncode == 0 and "Core" in out
    assert warm.process.wait(timeout=30) == dbt_warm.SERVED


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc")
def test_a_warm_process_that_dies_while_a_launcher_waits_leaves_the_build_to_dbt():
    warm, launcher = _launcher_waiting_during_the_imports()
    warm.process.kill()
    out, _ = launcher.communicate(timeout=300)
    assert launcher.returncode == 0 and "Core" in out  # dbt itself ran it
    assert warm.process.wait(timeout=30) == -signal.SIGKILL


def _parsed_ahead(warm: dbt_warm.Warm, timeout: float = 300) -> None:
    """Wait until the warm process has parsed the project ahead."""
    saved = warm.folder / "parse" / "target" / "partial_parse.msgpack"
    deadline = time.monotonic() + timeout
    while not saved.exists():
        assert warm.process.poll() is None, f"the warm process ended ({warm.process.returncode})"
        assert time.monotonic() < deadline, "the warm process did not parse ahead"
        time.sleep(0.05)


def _parse_through_launcher(tmp_path: Path, target: Path) -> str:
    """``dbt parse`` of the project through the launcher into ``target``; dbt's debug log."""
    logs = tmp_path / "logs"
    env = {**os.environ, "DBT_TARGET_PATH": str(target), "DBT_LOG_PATH": str(logs),
           "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}  # fmt: skip
    done = subprocess.run([str(LAUNCHER), "parse", "--project-dir", str(DBT_PROJECT_DIR)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return (logs / "dbt.log").read_text()


NOTHING_TO_PARSE = "no changes found, skipping parsing"


def test_the_parse_ahead_is_handed_to_the_build_of_its_target_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("PUBLIEKSDATA_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    target = tmp_path / "target"
    ahead = dbt_warm.ParseAhead(DBT_PROJECT_DIR, DBT_PROJECT_DIR, target)
    assert ahead.needed(newest_source=0.0)  # no saved parse there yet
    warm = dbt_warm.start(ahead)
    _parsed_ahead(warm)
    log = _parse_through_launcher(tmp_path, target)
    assert warm.process.wait(timeout=30) == dbt_warm.SERVED
    assert NOTHING_TO_PARSE in log  # the build found the saved parse and parsed nothing
    assert not warm.folder.exists()  # the parse's own folder removed by the warm process
    saved = target / "partial_parse.msgpack"
    assert not ahead.needed(newest_source=saved.stat().st_mtime - 1)
    assert ahead.needed(newest_source=saved.stat().st_mtime + 1)  # a project file changed since

    # made for another target folder: not handed over, that build parses for itself
    other = tmp_path / "other"
    warm = dbt_warm.start(dbt_warm.ParseAhead(DBT_PROJECT_DIR, DBT_PROJECT_DIR, other))
    _parsed_ahead(warm)
    (tmp_path / "second").mkdir()
    log = _parse_through_launcher(tmp_path / "second", tmp_path / "elsewhere")
    assert NOTHING_TO_PARSE not in log
    assert warm.process.wait(timeout=30) == dbt_warm.SERVED
    assert not other.exists()


def test_the_jobs_dbt_build_runs_in_the_warm_process(home, monkeypatch):
    """sector_refresh starts a warm process in its intake step and its dbt step's build runs
    there, with the project parsed ahead; afterwards nothing of it is left (process, socket,
    environment), and the next run has nothing to parse ahead."""
    from conftest import deliver, write_minimal_sector
    from test_intake import tickets_csv

    from orchestration.project import build_target, parse_ahead
    from publieksdata.pipeline import run_job

    write_minimal_sector(home)
    deliver(home, "th_a", "tickets.csv", tickets_csv(20))
    started = []
    real = dbt_warm.start

    def start_and_parse(ahead=None) -> dbt_warm.Warm:  # parsed before dbt asks, whatever the load
        warm = real(ahead)
        started.append((warm, ahead))
        if ahead is not None:
            _parsed_ahead(warm)
        return warm

    monkeypatch.setattr(dbt_warm, "start", start_and_parse)
    run_job(home)
    [(warm, ahead)] = started
    assert ahead == dbt_warm.ParseAhead(DBT_PROJECT_DIR, DBT_PROJECT_DIR, build_target(home))
    assert warm.served()
    assert NOTHING_TO_PARSE in (build_target(home) / "dbt.log").read_text()
    assert dbt_warm._current is None and dbt_warm.ENV not in os.environ
    assert not warm.folder.exists()
    assert parse_ahead(home) is None  # the build's target folder holds an up-to-date parse
