"""Right to erasure: the person out of the warehouse, out of later deliveries, never named."""

import hashlib
import io
import logging

import duckdb
import pytest
from privacy_scan import find_identifiers
from test_privacy_keys import HEADER, heads, load, make_sector, persons, row, tickets

from privacy.erasure import ErasureRequest, erase_person
from privacy.rotation import rotate_keys
from publieksdata import cli
from publieksdata.settings import PublieksdataError


@pytest.fixture
def sector(home):
    return make_sector(home)


ANN = frozenset({("th_a", "T1"), ("th_a", "T2"), ("th_a", "T3"), ("mu_b", "M1"), ("mu_b", "M2")})


def meta(home, sql):
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def ticket_attributes(home, institution, ticket):
    return meta(
        home,
        "select sector_head, customer_head, pc4, birth_year, country, price "
        f"from pseudo.tickets where institution_code = '{institution}' and ticket_id = '{ticket}'",
    )[0]


def needles_of(value: str) -> list[str]:
    forms = {value, value.strip(), value.strip().lower()}
    return sorted(forms | {hashlib.sha256(f.encode()).hexdigest() for f in forms})


def test_erase_by_email_unlinks_every_row_of_the_person(sector):
    ann_pseudonym = tickets(sector)[("th_a", "T1")][0]
    rows_before = len(tickets(sector))
    outcome = erase_person(sector, ErasureRequest("email", "  ANN@example.NL"))
    assert (outcome.pseudonyms, outcome.ticket_rows) == (3, 5)  # e-mail, C1 at th_a, M9 at mu_b
    rows = tickets(sector)
    assert len(rows) == rows_before  # the tickets stay: totals and revenue do not change
    for key in ANN:
        assert ticket_attributes(sector, *key)[:5] == (None, None, None, None, None)
    assert ANN not in persons(sector) and len(persons(sector)) == 3  # bob, cas, dirk
    per_ticket, _ = heads(sector)  # the heads dbt reads went with the pseudonyms
    assert all(per_ticket[key] == (None, None) for key in ANN)
    assert ticket_attributes(sector, "th_a", "T1")[5] == 12.5
    # the suppression list holds pseudonyms; the log holds neither them nor the identifier
    erased = {r[0] for r in meta(sector, "select pseudonym from meta.erased")}
    assert ann_pseudonym in erased and len(erased) == 3
    log = meta(sector, "select * from meta.erasure_log")
    assert len(log) == 1 and log[0][2:6] == ("email", None, 3, 5)
    assert not {str(v) for v in log[0]} & erased
    # nowhere in the data home but in the suppression list
    hits = find_identifiers(
        sector.root, needles_of("ann@example.nl") + sorted(erased), skip=("landing",)
    )
    assert hits == ["warehouse.duckdb:meta.erased"]


def test_erasure_deletes_the_persons_record_keys(sector):
    """The erased person's record keys (cell-key perturbation) go with their pseudonyms; everyone
    else keeps theirs, so their cells keep their deviation."""
    from test_privacy_keys import record_keys

    before = record_keys(sector)
    erase_person(sector, ErasureRequest("email", "ann@example.nl"))
    erased = {r[0] for r in meta(sector, "select pseudonym from meta.erased")}
    after = record_keys(sector)
    assert erased and erased <= set(before) and not erased & set(after)
    assert after == {p: k for p, k in before.items() if p not in erased}
    live = {p for r in tickets(sector).values() for p in r[:2] if p}
    assert set(after) == live


def test_erase_by_customer_number_takes_the_persons_rows_at_other_members(sector):
    outcome = erase_person(sector, ErasureRequest("customer_id", "C1", "th_a"))
    assert outcome.institution == "th_a" and outcome.ticket_rows == 5
    assert ANN not in persons(sector) and len(persons(sector)) == 3
    assert ticket_attributes(sector, "mu_b", "M2")[:2] == (None, None)


def test_erase_by_phone_keeps_other_people(sector):
    erase_person(sector, ErasureRequest("phone", "+31 6 1111 2222"))
    assert {("th_a", "T4"), ("th_a", "T5")} not in [set(g) for g in persons(sector)]
    assert ANN in persons(sector)


def test_a_later_delivery_does_not_bring_an_erased_person_back(sector):
    erase_person(sector, ErasureRequest("email", "ann@example.nl"))
    load(sector, "th_a", "later.csv", HEADER + "".join([
        row("T40", email="Ann@Example.nl "),           # the erased e-mail again
        row("T41", customer="C1"),                      # her erased account, nothing else
        row("T42", customer="C77", email="ann@example.nl"),  # a new account, with her e-mail
        row("T44", customer="C1", email="zoe@example.nl"),   # someone else on her old account
    ]))  # fmt: skip
    load(sector, "th_a", "even_later.csv", HEADER + row("T43", customer="C77"))
    load(sector, "mu_b", "later_b.csv", HEADER + row("M40", customer="M9"))
    for ticket in ("T40", "T41", "T42", "T43"):
        assert ticket_attributes(sector, "th_a", ticket)[:2] == (None, None), ticket
    assert ticket_attributes(sector, "mu_b", "M40")[:2] == (None, None)
    zoe = ticket_attributes(sector, "th_a", "T44")
    assert zoe[0] is not None and zoe[1] is None  # zoe counts; the erased account link does not
    assert len(persons(sector)) == 4  # bob, cas, dirk, zoe
    soft = meta(sector, "select soft_problems from intake.deliveries where file_name = 'later.csv'")
    assert '"erased_person_rows": 3' in soft[0][0]


def test_the_suppression_list_survives_key_rotation(sector):
    erase_person(sector, ErasureRequest("email", "ann@example.nl"))
    before = {r[0] for r in meta(sector, "select pseudonym from meta.erased")}
    rotate_keys(sector)
    after = {r[0] for r in meta(sector, "select pseudonym from meta.erased")}
    assert len(after) == len(before) == 3 and not before & after
    load(sector, "th_a", "later.csv", HEADER + row("T50", email="ann@example.nl"))
    assert ticket_attributes(sector, "th_a", "T50")[:2] == (None, None)
    assert len(persons(sector)) == 3


def test_an_erasure_before_any_delivery_keeps_the_person_out(home):
    from conftest import write_minimal_sector

    write_minimal_sector(home)
    outcome = erase_person(home, ErasureRequest("email", "new@example.nl"))
    assert (outcome.pseudonyms, outcome.ticket_rows) == (1, 0)
    load(home, "th_a", "a.csv", HEADER + row("T1", email="NEW@example.nl"))
    assert ticket_attributes(home, "th_a", "T1")[:2] == (None, None)


# --- the command: the identifier never shows ---------------------------------------------------


@pytest.fixture
def no_rebuild(monkeypatch):
    """The job itself is covered by test_privacy_lifecycle.py: here only the command's text."""
    import publieksdata.pipeline

    calls = []

    def fake_run_job(home, **options):
        calls.append(home)
        return {"data_home": str(home.root), "release": None}

    monkeypatch.setattr(publieksdata.pipeline, "run_job", fake_run_job)
    return calls


SECRET_EMAIL = "Geheim.Persoon@Example.org"


def output_of(capsys, caplog) -> str:
    captured = capsys.readouterr()
    return (captured.out + captured.err + caplog.text).lower()


def test_erase_command_never_echoes_the_identifier(sector, no_rebuild, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    load(sector, "th_a", "g.csv", HEADER + row("T60", email=SECRET_EMAIL))
    assert cli.main(["-v", "erase", "--email", SECRET_EMAIL]) == 0
    assert len(no_rebuild) == 1
    text = output_of(capsys, caplog)
    assert "erasure e" in text and "1 ticket row(s)" in text
    assert not [n for n in needles_of(SECRET_EMAIL) if n.lower() in text]
    pseudonyms = [r[0] for r in meta(sector, "select pseudonym from meta.erased")]
    assert pseudonyms and not [p for p in pseudonyms if p in text]


def test_erase_command_reads_the_identifier_from_stdin(sector, no_rebuild, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("+31 6 1111 2222\n"))
    assert cli.main(["erase", "--phone", "-"]) == 0
    assert "2 ticket row(s)" in capsys.readouterr().out
    assert {("th_a", "T4"), ("th_a", "T5")} not in [set(g) for g in persons(sector)]


@pytest.mark.parametrize(
    "argv",
    [
        ["erase", "--email", "no-address " + SECRET_EMAIL.replace("@", " at ")],
        ["erase", "--emial", SECRET_EMAIL],
        ["erase", "--email", SECRET_EMAIL, "--phone", SECRET_EMAIL],
        ["erase", f"--email={SECRET_EMAIL}", "surplus-" + SECRET_EMAIL],
        ["erase", "--customer-id", SECRET_EMAIL],
        ["erase", "--institution", "nowhere", "--customer-id", SECRET_EMAIL],
    ],
)
def test_erase_errors_are_one_line_and_never_echo_the_value(
    sector, no_rebuild, capsys, caplog, argv
):
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code != 0 and not no_rebuild
    captured = capsys.readouterr()
    assert captured.err.startswith("publieksdata erase: ") and captured.err.count("\n") == 1
    text = (captured.out + captured.err + caplog.text).lower()
    assert "geheim" not in text


def test_unknown_kind_is_refused(sector):
    with pytest.raises(PublieksdataError):
        erase_person(sector, ErasureRequest("name", "Ann"))


def test_the_request_never_shows_its_value():
    assert SECRET_EMAIL not in repr(ErasureRequest("email", SECRET_EMAIL))


def test_compaction_leaves_no_overwritten_value_in_the_file(sector):
    """DuckDB keeps overwritten values in free blocks; the compacted file has live data only."""
    from privacy.erasure import compact_warehouse

    old = [f"{i:064x}" for i in range(3000)]
    conn = duckdb.connect(str(sector.warehouse))
    conn.execute("pragma force_compression = 'uncompressed'")
    conn.execute("create table meta.scratch as select unnest(?::varchar[]) as p", [old])
    conn.execute("checkpoint")
    conn.execute("update meta.scratch set p = md5(p)")
    conn.execute("checkpoint")
    conn.close()
    assert old[-1].encode() in sector.warehouse.read_bytes()  # still in the file
    rows = tickets(sector)
    compact_warehouse(sector)
    assert old[-1].encode() not in sector.warehouse.read_bytes()
    assert tickets(sector) == rows
    assert meta(sector, "select count(*) from meta.scratch") == [(3000,)]
