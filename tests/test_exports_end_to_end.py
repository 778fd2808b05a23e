"""Members' packages and report.html on the real marts: one generated sector, one job run.

The report is rendered by headless Chromium when /usr/bin/chromium exists (Debian package
``chromium``); that test is skipped otherwise.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from conftest import isolated_home
from test_exports import assert_packages_name_no_other_member

from exports.packages import read_registry
from exports.release import current_release, verify_release

CHROMIUM = Path("/usr/bin/chromium")
PUBLISHED_TABLES = {"benchmark", "loyalty_summary", "loyalty_frequency", "loyalty_cohorts",
                    "loyalty_crossover", "loyalty_segments", "market_area", "market_age",
                    "market_catchment", "market_sector"}  # fmt: skip


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    from publieksdata.pipeline import run_job
    from publieksdata.synthetic import generate_sector

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("exports_e2e") / "home"
    home = isolated_home(root, mp, b"\x05")
    generate_sector(root, institutions=10, persons=3000, years=2, seed=7)
    run_job(home)
    yield home, current_release(home)
    mp.undo()


def test_every_member_has_a_verified_package(release):
    home, rel = release
    manifest = verify_release(rel)
    members = read_registry(home)
    assert manifest["institutions"] == [m.code for m in members]
    for m in members:
        folder = rel / "institutions" / m.code
        for table in PUBLISHED_TABLES & set(manifest["tables"]):
            assert (folder / "parquet" / f"{table}.parquet").is_file(), (m.code, table)
            assert f"institutions/{m.code}/csv/{table}.csv" in manifest["files"]
        assert f"institutions/{m.code}/report.html" in manifest["files"]


def test_no_package_names_another_member(release):
    home, rel = release
    members = [(m.code, m.name) for m in read_registry(home)]
    assert assert_packages_name_no_other_member(rel, members) > 0


def test_packages_hold_only_the_members_rows_and_no_person_key(release):
    home, rel = release
    conn = duckdb.connect()
    for m in read_registry(home):
        for path in (rel / "institutions" / m.code / "parquet").glob("*.parquet"):
            cols = [r[0] for r in conn.execute(
                f"describe select * from read_parquet('{path}')").fetchall()]  # fmt: skip
            assert not [c for c in cols if "person_key" in c or "pseudonym" in c], path
            if "institution_code" in cols:
                codes = conn.execute(
                    f"select distinct institution_code from read_parquet('{path}')"
                ).fetchall()
                assert codes in ([], [(m.code,)]), path
            assert (
                "n_persons" not in cols
                or conn.execute(
                    f"select count(*) from read_parquet('{path}') where n_persons between 1 and 9"
                ).fetchone()[0]
                == 0
            ), path


def test_data_dictionary_takes_meanings_from_the_dbt_manifest(release):
    home, rel = release
    code = read_registry(home)[0].code
    with (rel / "institutions" / code / "data_dictionary.csv").open(encoding="utf-8-sig") as fh:
        rows = {(r["table"], r["column"]): r for r in csv.DictReader(fh)}
    tickets = rows[("benchmark", "tickets")]
    assert "ticket" in tickets["meaning"].lower() and tickets["dutch_term"] == "verkochte kaarten"
    assert rows[("benchmark", "revenue")]["unit"] == "EUR"
    assert rows[("benchmark", "suppressed")]["dutch_term"] == "onderdrukt"
    described = sum(1 for r in rows.values() if r["meaning"])
    assert described / len(rows) > 0.9


def test_report_is_self_contained_and_in_dutch(release):
    home, rel = release
    for m in read_registry(home):
        page = (rel / "institutions" / m.code / "report.html").read_text()
        assert 'lang="nl"' in page and "Zo leest u dit rapport" in page
        assert page.count("<svg") >= 5, m.code
        # nothing to fetch: no URL, no external stylesheet, script, image or font
        assert not re.search(r"https?:|//[a-z0-9.-]+\.[a-z]{2,}/", page, re.IGNORECASE), m.code
        assert not re.search(r"<(script|link|img|iframe|object|embed)\b", page, re.IGNORECASE)
        assert "url(" not in page and "@import" not in page


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs headless Chromium (apt-get install chromium)"
)
def test_chromium_renders_the_report_without_network(release, tmp_path):
    home, rel = release
    member = read_registry(home)[0]
    page = rel / "institutions" / member.code / "report.html"
    shot = tmp_path / "report.png"
    netlog = tmp_path / "netlog.json"
    base = chromium_command(tmp_path / "profile", netlog)
    subprocess.run(
        base + [f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri()],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = subprocess.run(
        base + ["--dump-dom", page.as_uri()], check=True, timeout=120, capture_output=True,
        text=True,
    ).stdout  # fmt: skip
    assert dom.count("<svg") >= 5 and member.name.split()[0] in dom
    # Chromium's network log: the page started no request. (The browser itself tries its
    # update and account services whatever the flags; those have no page as initiator and the
    # host resolver rule keeps them from resolving, so nothing leaves the machine.)
    assert page_requests(netlog) == []
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def chromium_command(profile: Path, netlog: Path) -> list[str]:
    """Headless Chromium that resolves no host name: a request could not leave the machine."""
    return [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--log-net-log={netlog}"]  # fmt: skip


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs headless Chromium (apt-get install chromium)"
)
def test_the_network_check_sees_a_page_request(tmp_path):
    page = tmp_path / "leaky.html"
    page.write_text('<!doctype html><img src="http://publieksdata.invalid/pixel.png">')
    netlog = tmp_path / "netlog.json"
    subprocess.run(
        chromium_command(tmp_path / "profile", netlog) + ["--dump-dom", page.as_uri()],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    assert page_requests(netlog) == ["http://publieksdata.invalid/pixel.png"]


def page_requests(netlog: Path) -> list[str]:
    """URLs of the requests in a Chromium net log that a page (not the browser) started."""
    import json

    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start_job
        and "url" in e.get("params", {})
        and e["params"].get("initiator") != "not an origin"
    ]
