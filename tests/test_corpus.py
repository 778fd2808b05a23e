"""Every file of the corpus (tests/corpus, expected.json) gets the outcome the standard gives it."""

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import write_minimal_sector

from ingest.intake import take_deliveries
from privacy.step import pseudonymise_pending

CORPUS = Path(__file__).parent / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())


def warehouse_fingerprint(home) -> tuple:
    """Row counts and a content checksum of the pseudonymised tables."""
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        out = []
        for table in ("pseudo.tickets", "pseudo.events"):
            cols = [
                r[0] for r in conn.execute(f"describe {table}").fetchall() if r[0] != "loaded_at"
            ]
            out.append(conn.execute(
                f"select count(*), md5(coalesce(string_agg(md5(concat_ws('|', {', '.join(cols)})), ',' "
                f"order by {cols[0]}, {cols[1]}), '')) from {table}"
            ).fetchone())  # fmt: skip
        return tuple(out)
    finally:
        conn.close()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_gets_its_outcome(home, name):
    expected = EXPECTED[name]
    write_minimal_sector(home)
    # a first, good delivery, so that "a rejected file changes nothing" is tested on real rows
    (home.landing / "mu_b").mkdir(parents=True)
    baseline = (CORPUS / "good_canonical.csv").read_text().replace("corpus", "baseline")
    (home.landing / "mu_b" / "baseline.csv").write_text(baseline)
    take_deliveries(home)
    pseudonymise_pending(home)
    before = warehouse_fingerprint(home)

    (home.landing / "th_a").mkdir(parents=True)
    shutil.copy(CORPUS / name, home.landing / "th_a" / name)
    [outcome] = take_deliveries(home)
    pseudonymise_pending(home)
    after = warehouse_fingerprint(home)

    assert outcome.status == expected["status"], outcome.problems
    if expected["status"] == "rejected":
        assert after == before
        rules = {(p["rule"], p.get("column")) for p in outcome.problems}
        assert (expected["rule"], expected.get("column")) in rules, rules
        problem = next(p for p in outcome.problems if p["rule"] == expected["rule"])
        if "rows" in expected:
            assert problem["rows"] == expected["rows"]
        if "detail" in expected:
            assert expected["detail"].lower() in problem["detail"].lower()
        report = Path(outcome.report)
        markdown = report.with_name(report.name.replace(".report.json", ".report.md")).read_text()
        assert "What to do" in markdown and name in markdown
        for leak in ("corpus1@", "06-5555", "1011 AB", "Li\u00e8ge"):
            assert leak not in markdown and leak not in report.read_text()
    else:
        assert outcome.kind == expected["kind"]
        assert outcome.rows == expected["rows"]
        for key, value in expected.get("soft", {}).items():
            assert outcome.soft.get(key) == value, outcome.soft
        assert after != before
        if "price_sum" in expected:
            conn = duckdb.connect(str(home.warehouse), read_only=True)
            total = conn.execute(
                "select sum(price) from pseudo.tickets where institution_code = 'th_a'"
            ).fetchone()[0]
            conn.close()
            assert float(total) == expected["price_sum"]


def test_the_documented_samples_are_accepted(home):
    write_minimal_sector(home)
    samples = Path(__file__).parent.parent / "docs" / "samples"
    for name in ("tickets_sample.csv", "events_sample.csv"):
        (home.landing / "th_a").mkdir(parents=True, exist_ok=True)
        shutil.copy(samples / name, home.landing / "th_a" / name)
    outcomes = {o.file_name: o for o in take_deliveries(home)}
    assert outcomes["tickets_sample.csv"].status == "validated", outcomes[
        "tickets_sample.csv"
    ].problems
    assert outcomes["events_sample.csv"].status == "validated", outcomes[
        "events_sample.csv"
    ].problems
    assert outcomes["tickets_sample.csv"].rows == 4
