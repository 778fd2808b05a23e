"""Kill the job (SIGKILL) mid-intake, mid-privacy and mid-dbt-build: the next run finishes the
work, with published results identical to an uninterrupted run, nothing lost, nothing counted
twice and no file left in quarantine. A second run without new deliveries changes nothing and
publishes no new release; two jobs started at once end as one run would. (A kill while
publishing: tests/test_exports.py; readers during publication and the lock: test_concurrency.py.)

Every test here compares with one uninterrupted run of the same 4-member sector (the module
fixture). A scenario is a chain of failed runs, each failing at a later step of the job
than the one before (so every run must first finish what the run before it left), and one
finishing run. The homes share the reference's master key and keyring: open-year counts are
perturbed with record keys derived from the pseudonyms, so only the same keys can give the
same published numbers.
"""

import os
import shutil
import subprocess
import sys
import textwrap

import duckdb
import pytest
from conftest import isolated_home

from exports.release import current_release, list_releases, verify_release
from publieksdata.pipeline import run_job
from publieksdata.synthetic import generate_sector

SECTOR = {"institutions": 4, "persons": 500, "years": 1, "seed": 21}


def published_content(home) -> dict:
    """Every published table's rows, leaving out the bookkeeping columns (BOOKKEEPING)."""
    conn = duckdb.connect(str(current_release(home) / "marts.duckdb"), read_only=True)
    try:
        tables = [r[0] for r in conn.execute("select table_name from duckdb_tables()").fetchall()]
        out = {}
        for t in tables:
            columns = [r[0] for r in conn.execute(
                "select column_name from duckdb_columns() where table_name = ? "
                "order by column_index", [t]).fetchall() if r[0] not in BOOKKEEPING]  # fmt: skip
            select = ", ".join(f'"{c}"' for c in columns)
            out[t] = conn.execute(f'select {select} from "{t}" order by all').fetchall()
        return out
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
            "marts": _mart_contents(conn),
        }
    finally:
        conn.close()


# when a row was loaded differs between two homes by nature; everything else must not (the
# published deliveries name their ids and times of receipt, and a duplicate its first delivery)
BOOKKEEPING = ("loaded_at", "delivery_id", "institution_version", "received_at", "duplicate_of")


def _mart_contents(conn) -> dict:
    """Every table dbt built in marts and published, by content: row count and a hash of the
    rows (not only the same counts), leaving out load-time bookkeeping columns."""
    out = {}
    for schema, table in conn.execute(
        "select schema_name, table_name from duckdb_tables() "
        "where schema_name in ('marts', 'published') order by 1, 2"
    ).fetchall():
        columns = [r[0] for r in conn.execute(
            "select column_name from duckdb_columns() where schema_name = ? and table_name = ? "
            "order by column_index", [schema, table]).fetchall() if r[0] not in BOOKKEEPING]  # fmt: skip
        row = "struct_pack(" + ", ".join(f'"{c}" := "{c}"' for c in columns) + ")"
        out[f"{schema}.{table}"] = conn.execute(
            f'select count(*), coalesce(sum(hash({row})), 0) from "{schema}"."{table}"'
        ).fetchone()
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    home = isolated_home(tmp_path_factory.mktemp("reference") / "home", mp, b"\x0b")
    generate_sector(home.root, **SECTOR)
    run_job(home)
    yield home, published_content(home), warehouse_facts(home)
    mp.undo()


def same_keys_home(root, mp, reference):
    """A fresh data home with the reference home's master key and keyring."""
    home = isolated_home(root, mp, b"\x0b")
    shutil.rmtree(home.keys)
    shutil.copytree(reference.keys, home.keys)
    return home


def assert_finished_like(home, expected_content, expected_facts) -> None:
    assert published_content(home) == expected_content
    assert warehouse_facts(home) == expected_facts  # nothing lost, nothing twice
    assert not [p for p in home.quarantine.rglob("*") if p.is_file()]
    assert not any(p.is_file() for p in home.landing.rglob("*"))
    assert not list(home.published.glob(".incoming-*"))
    verify_release(current_release(home))


@pytest.mark.parametrize(
    "faults",
    [
        # an upload sealed into quarantine, not validated; then a group of deliveries committed
        # with their quarantine files still there; then every model built and tested, not yet
        # published (the last run builds nothing new: no institution changed, and publishes)
        ["intake.after_quarantine", "privacy.after_commit", "dbt.after_build"],
        # intake's workers reading several deliveries at once: some validated, some typed and
        # waiting for Great Expectations, some still sealed originals; then some deliveries
        # pseudonymised, the rest waiting; then dbt building the models (dbt killed with it)
        ["intake.after_validated@3", "privacy.after_delivery@3", "dbt.mid_build@8"],
    ],
    ids=lambda faults: "+".join(faults),
)
def test_the_next_run_finishes_what_a_killed_run_left(uninterrupted, tmp_path, monkeypatch, faults):
    reference, expected_content, expected_facts = uninterrupted
    home = same_keys_home(tmp_path / "home", monkeypatch, reference)
    generate_sector(home.root, **SECTOR)
    for fault in faults:
        crashed = subprocess.run(
            [sys.executable, "-m", "publieksdata.cli", "run"],
            env={**os.environ, "PUBLIEKSDATA_FAULT": fault, "PUBLIEKSDATA_INTAKE_WORKERS": "3"},
            capture_output=True,
            text=True,
        )
        assert crashed.returncode == -9, (fault, crashed.stderr[-2000:])
        assert current_release(home) is None  # before the first release: no current at all
        assert not list_releases(home)
        if fault.startswith("dbt."):
            # the killed build left dbt's own process dead too, and the lock free
            assert not _dbt_processes_for(home)
    run_job(home)
    assert_finished_like(home, expected_content, expected_facts)


def test_a_step_out_of_memory_says_which_limit_and_the_next_run_finishes(
    uninterrupted, tmp_path, monkeypatch
):
    """DuckDB's memory limit too small for the night: the run fails naming the setting and
    its value (no delivered value) and commits nothing half. Intake and the privacy step are
    one pass on the privacy step's limit (PUBLIEKSDATA_PRIVACY_MEMORY); intake's own
    (PUBLIEKSDATA_WORK_MEMORY) is then not the one that runs out. A run with the limit raised
    ends as an uninterrupted run."""
    reference, expected_content, expected_facts = uninterrupted
    home = same_keys_home(tmp_path / "home", monkeypatch, reference)
    generate_sector(home.root, **SECTOR)
    step, setting = "intake and privacy", "PUBLIEKSDATA_PRIVACY_MEMORY"
    failed = subprocess.run(
        [sys.executable, "-m", "publieksdata.cli", "run"],
        env={**os.environ, setting: "1MB", "PUBLIEKSDATA_WORK_MEMORY": "1MB"},
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1, failed.stderr[-2000:]
    assert (
        f"{step} ran out of memory: DuckDB's limit for this step, {setting}=1MB, was not "
        "enough" in failed.stderr
    ), failed.stderr[-3000:]
    assert current_release(home) is None
    with duckdb.connect(str(home.warehouse), read_only=True) as conn:
        assert conn.execute("select count(*) from pseudo.tickets").fetchone() == (0,)
    run_job(home)
    assert_finished_like(home, expected_content, expected_facts)


def _dbt_processes_for(home) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "dbt" in line and str(home.root) in line]


def test_a_second_run_without_new_deliveries_changes_nothing(uninterrupted, capsys):
    """Idempotent: same marts, and no new release when the published content is the same."""
    import dagster as dg

    from publieksdata.cli import main

    home, expected_content, expected_facts = uninterrupted
    releases = list_releases(home)
    manifest_before = (current_release(home) / "manifest.json").read_bytes()
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert f"unchanged: the published content is the same, release {releases[-1]} kept" in out
    assert list_releases(home) == releases
    assert (current_release(home) / "manifest.json").read_bytes() == manifest_before
    assert published_content(home) == expected_content
    assert warehouse_facts(home) == expected_facts
    # Dagster records the release asset as materialised, saying it kept the release, with the
    # same data version (the content fingerprint) as the first run
    with dg.DagsterInstance.get() as instance:
        events = instance.fetch_materializations(dg.AssetKey("release"), limit=2).records
        latest, first = (r.asset_materialization for r in events)
    assert latest.metadata["outcome"].value == f"unchanged, release {releases[-1]} kept"
    assert first.metadata["outcome"].value == f"new release {releases[-1]}"
    assert latest.tags["dagster/data_version"] == first.tags["dagster/data_version"]


INTAKE_RUN = textwrap.dedent(
    """
    # what the daemon's run worker does for a landing-sensor run: the delivery_intake job,
    # outside the CLI (its steps take the warehouse lock one by one)
    import dagster as dg
    from orchestration.environment import configure_environment
    configure_environment()
    from orchestration.definitions import defs
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def("delivery_intake").execute_in_process(instance=instance)
    raise SystemExit(0 if result.success else 1)
    """
)


INSTANCE_INIT = textwrap.dedent(
    """
    import dagster as dg
    from orchestration.environment import configure_environment
    configure_environment()
    with dg.DagsterInstance.get() as instance:
        instance.get_runs(limit=1)
    """
)


def test_the_sensor_run_and_the_nightly_run_at_once_end_as_one_run(
    uninterrupted, tmp_path, monkeypatch
):
    """delivery_intake (as the sensor launches it) and a whole run started together: neither
    fails, nothing is taken twice, and the end state equals one uninterrupted run."""
    reference, expected_content, expected_facts = uninterrupted
    home = same_keys_home(tmp_path / "home", monkeypatch, reference)
    generate_sector(home.root, **SECTOR)
    env = dict(os.environ)
    # the Dagster instance exists before either run starts, as it does under the daemon (two
    # processes creating a fresh instance's SQLite storage at once race on its tables)
    subprocess.run([sys.executable, "-c", INSTANCE_INIT], env=env, check=True)
    intake = subprocess.Popen([sys.executable, "-c", INTAKE_RUN], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    whole = subprocess.Popen([sys.executable, "-m", "publieksdata.cli", "run"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    intake_out, _ = intake.communicate(timeout=600)
    whole_out, _ = whole.communicate(timeout=600)
    assert intake.returncode == 0, intake_out[-3000:]
    assert whole.returncode == 0, whole_out[-3000:]
    assert len(list_releases(home)) == 1
    assert_finished_like(home, expected_content, expected_facts)
