"""Two at once: an analyst reading ``published/current`` while releases are published, and a
second job meeting a running one (the warehouse lock, publieksdata/locking.py). Fast: a
hand-made warehouse, no dbt. Two whole jobs started together: tests/test_crash_recovery.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from conftest import deliver, write_minimal_sector
from test_exports import make_warehouse

from exports.release import current_release, list_releases, publish_release
from publieksdata.locking import LOCK_NAME, warehouse_lock
from publieksdata.settings import PublieksdataError

REPO = Path(__file__).resolve().parent.parent

# An analyst's loop: resolve current once per read, then read the manifest, every table of
# marts.duckdb (read-only) and every Parquet file; all must agree with the manifest and carry
# one generation (the publisher writes generation g into every table of release g).
ANALYST = textwrap.dedent(
    """
    import json, os, sys, time
    import duckdb
    published, stop = sys.argv[1], sys.argv[2]
    reads, errors, seen = 0, [], set()
    mem = duckdb.connect()
    while not os.path.exists(stop) or reads == 0:
        try:
            release = os.path.realpath(os.path.join(published, "current"))
            manifest = json.load(open(os.path.join(release, "manifest.json")))
            assert manifest["release_id"] == os.path.basename(release), "manifest of another release"
            conn = duckdb.connect(os.path.join(release, "marts.duckdb"), read_only=True)
            generations = set()
            for table, rows in manifest["tables"].items():
                assert conn.execute(f'select count(*) from "{table}"').fetchone()[0] == rows, table
                parquet = os.path.join(release, "parquet", f"{table}.parquet")
                assert mem.execute(f"select count(*) from read_parquet('{parquet}')").fetchone()[0] == rows
                if table in ("benchmark", "market_sector"):
                    col = "tickets" if table == "benchmark" else "n_persons"
                    generations |= {r[0] for r in conn.execute(f'select distinct {col} from "{table}"').fetchall()}
                    generations |= {r[0] for r in mem.execute(f"select distinct {col} from read_parquet('{parquet}')").fetchall()}
            conn.close()
            # the path an analyst types: published/current/marts.duckdb, opened directly
            direct = duckdb.connect(os.path.join(published, "current", "marts.duckdb"), read_only=True)
            direct_gen = {r[0] for r in direct.execute("select distinct n_persons from market_sector").fetchall()}
            direct.close()
            assert len(generations) == 1 and len(direct_gen) == 1, (generations, direct_gen)
            seen.add(manifest["release_id"])
            reads += 1
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
            reads += 1
    print(json.dumps({"reads": reads, "errors": errors[:5], "n_errors": len(errors), "seen": sorted(seen)}))
    """
)


def _set_generation(home, generation: int) -> None:
    conn = duckdb.connect(str(home.warehouse))
    try:
        conn.execute("update published.benchmark set tickets = ?", [generation])
        conn.execute("update published.market_sector set n_persons = ?", [generation])
    finally:
        conn.close()


def test_an_analyst_reading_current_while_releases_are_published_sees_only_whole_releases(
    home, tmp_path
):
    make_warehouse(home)
    _set_generation(home, 1000)
    publish_release(home)
    stop = tmp_path / "stop"
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(home.published), str(stop)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # the analyst is reading
        for generation in range(1001, 1007):
            _set_generation(home, generation)
            publish_release(home)
    finally:
        stop.touch()
        out, err = analyst.communicate(timeout=60)
    assert analyst.returncode == 0, err[-2000:]
    result = json.loads(out)
    assert result["n_errors"] == 0, result["errors"]
    assert result["reads"] >= 10
    assert len(result["seen"]) >= 3  # the reads really straddled several switches
    assert len(list_releases(home)) == 7


LOCK_HOLDER = textwrap.dedent(
    """
    import sys, time
    from publieksdata.locking import warehouse_lock
    from publieksdata.settings import data_home
    with warehouse_lock(data_home(), "the test's other job"):
        print("held", flush=True)
        time.sleep(float(sys.argv[1]))
    """
)


def _hold_lock_elsewhere(seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(seconds)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_run_meeting_a_running_job_stops_cleanly_with_in_use(home):
    write_minimal_sector(home)
    deliver(home, "th_a", "tickets.csv", "ticket_id,event_id,event_start,sold_at,price\n")
    holder = _hold_lock_elsewhere(60)
    try:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "publieksdata.cli", "run"],
            env={**os.environ, "PUBLIEKSDATA_LOCK_WAIT_SECONDS": "1"},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("publieksdata run: the warehouse is in use by the test's other job")
    assert "Traceback" not in proc.stderr
    assert waited < 60
    # nothing was touched: the upload waits in landing, no warehouse, no release
    assert (home.landing / "th_a" / "tickets.csv").exists()
    assert not home.warehouse.exists()
    assert current_release(home) is None


def test_a_job_waits_for_the_lock_and_then_runs(home):
    holder = _hold_lock_elsewhere(1.5)
    started = time.monotonic()
    with warehouse_lock(home, "second", wait=30):
        waited = time.monotonic() - started
        assert "second" in (home.root / LOCK_NAME).read_text()
    holder.wait(timeout=30)
    assert 0.3 < waited < 30
    # re-entrant in one process (the CLI holds it while the run's steps take it again), and
    # released by the kernel when the holder dies, however it dies
    with warehouse_lock(home, "outer", wait=0), warehouse_lock(home, "inner", wait=0):
        pass
    killed = _hold_lock_elsewhere(600)
    killed.kill()
    killed.wait()
    with warehouse_lock(home, "after a kill", wait=5):
        pass


def test_the_lock_wait_setting_is_checked(monkeypatch, home):
    monkeypatch.setenv("PUBLIEKSDATA_LOCK_WAIT_SECONDS", "soon")
    with pytest.raises(PublieksdataError, match="PUBLIEKSDATA_LOCK_WAIT_SECONDS"):
        with warehouse_lock(home, "x"):
            pass


def test_status_during_a_run_says_in_use_instead_of_crashing(home):
    write_minimal_sector(home)
    writer = duckdb.connect(str(home.warehouse))  # a running job holds the file
    try:
        proc = subprocess.run([sys.executable, "-m", "publieksdata.cli", "status"],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    finally:
        writer.close()
    assert proc.returncode == 1, proc.stderr
    assert "in use by a running job" in proc.stderr and "Traceback" not in proc.stderr


def test_the_content_fingerprint_sees_rows_not_their_order_or_float_noise(home):
    """content_fingerprint: the published rows as a multiset; doubles to 12 digits."""
    from exports.release import content_fingerprint

    make_warehouse(home)
    first = content_fingerprint(home)

    def after(*statements: str) -> str:
        conn = duckdb.connect(str(home.warehouse))
        for statement in statements:
            conn.execute(statement)
        conn.close()
        return content_fingerprint(home)

    # noise below 12 significant digits, and another row order: the same content
    assert after("update published.benchmark set share_online = share_online * (1 + 1e-14)",
                 "create table t as select * from published.benchmark order by year desc",
                 "delete from published.benchmark",
                 "insert into published.benchmark select * from t",
                 "drop table t") == first  # fmt: skip
    # one cell up by one, another down by one: the sum of the column is the same, not the rows
    swapped = after(
        "update published.benchmark set tickets = case when year = 2024 then tickets + 1 "
        "else tickets - 1 end where institution_code = (select min(institution_code) from "
        "published.benchmark)"
    )
    assert swapped != first
    # a row twice is another content than the row once
    twice = after("insert into published.benchmark select * from published.benchmark limit 1")
    assert len({first, swapped, twice}) == 3
    assert after("update published.benchmark set suppressed = true where year = 2025") != twice


def test_publication_without_new_content_keeps_the_current_release(home):
    """The unit behind the job's idempotency (the job itself: test_crash_recovery.py)."""
    make_warehouse(home)
    first = publish_release(home, only_if_changed=True)
    assert not first.unchanged and first.manifest["content_fingerprint"]
    again = publish_release(home, only_if_changed=True)
    assert again.unchanged and again.release_id == first.release_id
    assert list_releases(home) == [first.release_id]
    # row order does not matter; a changed value does
    conn = duckdb.connect(str(home.warehouse))
    conn.execute("create table t as select * from published.benchmark order by year desc")
    conn.execute("delete from published.benchmark")
    conn.execute("insert into published.benchmark select * from t")
    conn.execute("drop table t")
    conn.close()
    assert publish_release(home, only_if_changed=True).unchanged
    _set_generation(home, 7)
    changed = publish_release(home, only_if_changed=True)
    assert not changed.unchanged and changed.release_id != first.release_id
    # a damaged current release is replaced, not kept
    (changed.path / "parquet" / "benchmark.parquet").write_bytes(b"damaged")
    repaired = publish_release(home, only_if_changed=True)
    assert not repaired.unchanged
    # forced (erasure, key rotation): a new release even with the same content
    forced = publish_release(home)
    assert not forced.unchanged and forced.release_id != repaired.release_id
    # a registry change changes the packages, so it is a change
    with home.registry.open("a") as fh:
        fh.write("zz_new,Nieuw Lid,theater,1011\n")
    assert not publish_release(home, only_if_changed=True).unchanged
