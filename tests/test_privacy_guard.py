"""The person-key guard: published SQL that could carry a person key blocks the release."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from privacy.guard import check_manifest, check_release
from publieksdata.settings import PublieksdataError

REPO = Path(__file__).resolve().parent.parent

PEOPLE = (
    "select institution_code, event_id, price, "
    "coalesce(sector_pseudonym, customer_pseudonym) as person_key "
    'from "warehouse"."pseudo"."tickets"'
)
P = '"warehouse"."intermediate"."int_people"'


def manifest_with(published_sql: str) -> dict:
    """A manifest as dbt writes it after a build: a source, one intermediate, one published."""

    def model(name, schema, sql, deps):
        return {
            "resource_type": "model", "name": name, "config": {"schema": schema},
            "relation_name": f'"warehouse"."{schema}"."{name}"', "compiled_code": sql,
            "depends_on": {"nodes": deps}, "columns": {},
        }  # fmt: skip

    return {
        "nodes": {
            "model.p.int_people": model(
                "int_people", "intermediate", PEOPLE, ["source.p.pseudo.tickets"]
            ),
            "model.p.report": model("report", "published", published_sql, ["model.p.int_people"]),
        },
        "sources": {
            "source.p.pseudo.tickets": {
                "resource_type": "source",
                "name": "tickets",
                "relation_name": '"warehouse"."pseudo"."tickets"',
                "columns": {
                    c: {}
                    for c in (
                        "institution_code",
                        "event_id",
                        "price",
                        "sector_pseudonym",
                        "customer_pseudonym",
                        "sector_head",
                    )
                },
            }  # fmt: skip
        },
    }


LEAKS = {
    "the key itself": f"select institution_code, person_key from {P}",
    "a pseudonym's head": (
        'select institution_code, sector_head as visitor from "warehouse"."pseudo"."tickets"'
    ),
    "renamed": f"select institution_code, person_key as visitor from {P}",
    "a hash of it": f"select institution_code, md5(person_key) as h from {P}",
    "a prefix": f"select substr(person_key, 1, 6) as bucket, count(*) as n from {P} group by 1",
    "a bucket of its hash": f"select hash(person_key) % 100 as b, count(*) as n from {P} group by 1",
    "through a CTE and max()": (
        f"with p as (select person_key as k from {P}), final as (select max(k) as top from p) "
        "select * from final"
    ),
    "string_agg": f"select institution_code, string_agg(person_key, ',') as l from {P} group by 1",
    "list()": f"select institution_code, list(person_key) as l from {P} group by 1",
    "one union branch": (
        f"select institution_code, 'x' as v from {P} union all select institution_code, "
        f"person_key from {P}"
    ),
    "a scalar subquery": (
        f"select e.event_id, (select min(p.person_key) from {P} p "
        f"where p.event_id = e.event_id) as first_person from {P} e"
    ),
    "a window's value": (
        f"select event_id, first_value(person_key) over (partition by event_id) as f from {P}"
    ),
    "unnest": f"select institution_code, u.k from {P}, unnest([person_key]) as u(k)",
    "select star": f"select * from {P}",
    "straight from the source": (
        'select sector_pseudonym as s, count(*) as n from "warehouse"."pseudo"."tickets" group by 1'
    ),
}

SAFE = {
    "counts": (
        f"select institution_code, count(*) as tickets, count(distinct person_key) as n_persons "
        f"from {P} group by 1"
    ),
    "identified share": (
        f"select institution_code, sum(case when person_key is not null then 1 else 0 end) "
        f"/ count(*) as share_identified from {P} group by 1"
    ),
    "a join on the key": (
        f"select a.institution_code, count(*) as n from {P} a join {P} b "
        "on a.person_key = b.person_key and a.institution_code <> b.institution_code group by 1"
    ),
    "exists": (
        f"select distinct e.event_id, exists(select 1 from {P} p where p.person_key = "
        "e.person_key and p.event_id <> e.event_id) as returns from " + P + " e"
    ),
    "window partition": (
        f"select event_id, count(*) over (partition by person_key) as visits from {P}"
    ),
    "count filter": (
        f"select institution_code, count(*) filter (where person_key is null) as anon from {P} "
        "group by 1"
    ),
    "per-person rows counted in a CTE": (
        f"with per_person as (select institution_code, person_key, count(*) as t from {P} "
        "group by 1, 2) select institution_code, count(*) as n, avg(t) as mean_t "
        "from per_person group by 1"
    ),
}


@pytest.mark.parametrize("what", LEAKS)
def test_a_model_that_publishes_a_person_key_fails(what):
    report = check_manifest(manifest_with(LEAKS[what]))
    assert report.findings, what
    assert all(f.model == "published.report" for f in report.findings)
    assert any("sector_pseudonym" in f.origin or "sector_head" in f.origin
               for f in report.findings)  # fmt: skip


@pytest.mark.parametrize("what", SAFE)
def test_aggregates_and_join_keys_pass(what):
    report = check_manifest(manifest_with(SAFE[what]))
    assert report.findings == [], what
    assert report.models == 1 and report.columns >= 2


def test_a_finding_names_the_column_and_its_path():
    [finding] = check_manifest(manifest_with(LEAKS["renamed"])).findings
    assert finding.column == "visitor"
    assert str(finding).startswith("published.report.visitor can carry a person key")
    assert "intermediate.int_people.person_key <- pseudo.tickets.sector_pseudonym" in str(finding)


def test_sql_the_guard_cannot_read_fails_closed():
    with pytest.raises(PublieksdataError, match="report"):
        check_manifest(manifest_with("select from where"))
    doc = manifest_with(SAFE["counts"])
    del doc["nodes"]["model.p.report"]["compiled_code"]
    with pytest.raises(PublieksdataError, match="no compiled SQL"):
        check_manifest(doc)


def test_the_real_project_passes(tmp_path):
    """Compile the project as it is and trace every published model."""
    env = {**os.environ, "PUBLIEKSDATA_WAREHOUSE": str(tmp_path / "w.duckdb"),
           "DBT_LOG_PATH": str(tmp_path / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}  # fmt: skip
    dbt = Path(sys.executable).parent / "dbt"
    subprocess.run(
        [str(dbt), "compile", "--quiet", "--profiles-dir", ".", "--target-path",
         str(tmp_path / "target")],
        cwd=REPO / "dbt_project", env=env, check=True, capture_output=True,
    )  # fmt: skip
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    report = check_manifest(manifest)
    assert report.models >= 1 and report.columns > 10
    assert report.findings == []


def _write_run_manifest(home, doc):
    target = home.dbt / "target"
    target.mkdir(parents=True, exist_ok=True)
    (target / "manifest.json").write_text(json.dumps(doc))


def test_the_release_is_blocked_by_a_leaking_model(home):
    _write_run_manifest(home, manifest_with(LEAKS["a hash of it"]))
    with pytest.raises(PublieksdataError, match="publication blocked .* published.report.h"):
        check_release(home)
    _write_run_manifest(home, manifest_with(SAFE["counts"]))
    assert check_release(home).findings == []


@pytest.fixture
def traced(monkeypatch) -> list[tuple[str, str]]:
    """(SQL, thread) of every model the guard traces (column_lineage) from now on."""
    import threading

    import privacy.guard as guard

    calls = []
    original = guard.column_lineage

    def tracing(sql, inputs, parsed=None):
        calls.append((sql, threading.current_thread().name))
        return original(sql, inputs, parsed)

    monkeypatch.setattr(guard, "column_lineage", tracing)
    return calls


def _sql(traced: list[tuple[str, str]]) -> list[str]:
    return [sql for sql, _ in traced]


def test_a_release_traces_again_only_what_changed(home, traced):
    """check_release keeps its answers per model (SQL and inputs) in the data home: the next
    release with the same models traces nothing, and a changed model is traced again."""
    _write_run_manifest(home, manifest_with(SAFE["counts"]))
    first = check_release(home)
    assert len(traced) == 2
    traced.clear()
    assert check_release(home) == first and traced == []
    _write_run_manifest(home, manifest_with(LEAKS["a hash of it"]))
    with pytest.raises(PublieksdataError, match="publication blocked .* published.report.h"):
        check_release(home)
    # int_people is the same and was not traced again
    assert _sql(traced) == [LEAKS["a hash of it"]]
    (home.dbt / "guard_lineage.json").write_text("{not json")  # unreadable: every model traced
    with pytest.raises(PublieksdataError, match="publication blocked"):
        check_release(home)
    assert _sql(traced)[1:] == [PEOPLE, LEAKS["a hash of it"]]


def test_an_answer_is_kept_whatever_the_query_does_not_name(traced):
    """A model's kept answer is keyed by the relations its query names, not by everything else
    the warehouse holds: a relation that appears (as dbt's own tables do during a first
    build) changes nothing, and a change to a relation the query reads traces it again."""
    # the published model also reads a table outside the dbt graph; a comment names another
    published = (
        '-- not read: "warehouse"."main"."later"\n'
        f"select p.institution_code, count(*) as n, max(x.label) as label from {P} p "
        'join "warehouse"."main"."extra" x on x.event_id = p.event_id group by 1'
    )
    manifest = manifest_with(published)
    first = check_manifest(manifest, source_columns={("main", "extra"): ["event_id", "label"]})
    assert first.findings == [] and len(traced) == 2
    later = {("main", "extra"): ["event_id", "label"], ("main", "later"): ["person_key"],
             ("main", "unrelated"): ["person_key"]}  # fmt: skip
    again = check_manifest(manifest, source_columns=later, earlier=first.traced)
    assert again.findings == [] and len(traced) == 2  # nothing traced again
    # the relation it reads changed: the model is traced again, its parent is not
    changed = {**later, ("main", "extra"): ["event_id", "label", "person_key"]}
    check_manifest(manifest, source_columns=changed, earlier=again.traced)
    assert _sql(traced)[2:] == [published]


def test_the_dbt_step_leaves_the_release_nothing_to_trace(home, traced):
    """On a new data home the models are traced while dbt builds them (GuardAhead, on the dbt
    step's thread person-key-guard-ahead), and the release's check finds every answer kept;
    the run-date table the build's hook creates is known to the answers made ahead."""
    from exports.release import current_release
    from publieksdata.pipeline import run_job
    from publieksdata.synthetic import generate_sector

    generate_sector(home.root, institutions=4, persons=500, years=1, seed=5)
    run_job(home)
    assert current_release(home) is not None
    models = check_release(home)  # what the release checked: nothing left to trace
    assert models.findings == [] and len(traced) >= models.models
    assert {thread for _, thread in traced} == {"person-key-guard-ahead"}


def test_what_fails_ahead_of_the_release_only_leaves_answers_out(home, tmp_path):
    """GuardAhead never fails the dbt step: a manifest it cannot read, a model whose compiled
    SQL is not where dbt writes it, and nothing is kept (the release's check traces them)."""
    from privacy.guard import GuardAhead

    broken = GuardAhead.snapshot(home)
    broken.start({"nodes": None}, tmp_path)
    broken.built("model.p.report")
    assert broken.finish() == 0
    missing = GuardAhead.snapshot(home)
    manifest = manifest_with(SAFE["counts"])
    for node in manifest["nodes"].values():
        node.update(package_name="p", path="x.sql", original_file_path="models/x.sql")
    missing.start(manifest, tmp_path / "no target")
    missing.built("model.p.int_people")
    missing.built("model.p.report")
    assert missing.finish() == 0
    assert not (home.dbt / "guard_lineage.json").exists()


def test_a_published_table_no_model_builds_blocks_the_release(home):
    import duckdb

    conn = duckdb.connect(str(home.warehouse))
    conn.execute("create schema published; create table published.old_report as select 1 as n")
    conn.close()
    _write_run_manifest(home, manifest_with(SAFE["counts"]))
    with pytest.raises(PublieksdataError, match="old_report"):
        check_release(home)


def test_no_run_manifest_no_release(home):
    with pytest.raises(PublieksdataError, match="dbt build must run"):
        check_release(home)


def test_the_release_asset_publishes_nothing_when_the_guard_fails(home):
    import dagster as dg

    from exports.release import current_release
    from orchestration.assets.publication import release

    _write_run_manifest(home, manifest_with(LEAKS["the key itself"]))
    # the guard's finding is the step's error, whatever else failed beside it (this data home
    # has no warehouse at all)
    with pytest.raises(PublieksdataError, match="publication blocked by the person-key guard"):
        dg.materialize([release])
    assert current_release(home) is None
    assert [p.name for p in home.published.iterdir()] in ([], [".lock"])  # at most the lock
