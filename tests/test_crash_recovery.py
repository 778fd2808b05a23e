"""Kill the job (SIGKILL) mid-intake and mid-privacy: the next run finishes the work, with
published results identical to an uninterrupted run, nothing lost, nothing counted twice and
no file left in quarantine. (A kill while publishing: tests/test_exports.py.)"""

import os
import subprocess
import sys

import duckdb
import pytest
from conftest import isolated_home

from exports.release import current_release
from publieksdata.pipeline import run_job
from publieksdata.synthetic import generate_sector

SECTOR = {"institutions": 4, "persons": 500, "years": 1, "seed": 21}


def published_content(home) -> dict:
    conn = duckdb.connect(str(current_release(home) / "marts.duckdb"), read_only=True)
    try:
        tables = [r[0] for r in conn.execute("select table_name from duckdb_tables()").fetchall()]
        return {t: conn.execute(f'select * from "{t}" order by all').fetchall() for t in tables}
    finally:
        conn.close()


def warehouse_facts(home) -> dict:
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        return {
            "tickets": conn.execute("select count(*) from pseudo.tickets").fetchone()[0],
            "events": conn.execute("select count(*) from pseudo.events").fetchone()[0],
            "ledger": dict(
                conn.execute("select status, count(*) from intake.deliveries group by 1").fetchall()
            ),
        }
    finally:
        conn.close()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    home = isolated_home(tmp_path_factory.mktemp("reference") / "home", mp, b"\x0b")
    generate_sector(home.root, **SECTOR)
    run_job(home)
    yield published_content(home), warehouse_facts(home)
    mp.undo()


@pytest.mark.parametrize("fault", ["intake.after_quarantine", "privacy.after_commit"])
def test_the_next_run_finishes_what_a_killed_run_left(uninterrupted, tmp_path, monkeypatch, fault):
    expected_content, expected_facts = uninterrupted
    home = isolated_home(tmp_path / "home", monkeypatch, b"\x0c")
    generate_sector(home.root, **SECTOR)
    crashed = subprocess.run(
        [sys.executable, "-m", "publieksdata.cli", "run"],
        env={**os.environ, "PUBLIEKSDATA_FAULT": fault},
        capture_output=True,
        text=True,
    )
    assert crashed.returncode == -9, crashed.stderr[-2000:]
    assert current_release(home) is None
    run_job(home)
    assert published_content(home) == expected_content
    assert warehouse_facts(home) == expected_facts  # nothing lost, nothing twice
    assert not [p for p in home.quarantine.rglob("*") if p.is_file()]
    assert not any(p.is_file() for p in home.landing.rglob("*"))
