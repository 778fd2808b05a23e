"""A run that fails on a delivery's value must not write that value anywhere: not in Dagster's
event log or compute logs, not in dbt's logs, not in a report, not on the command line.

An unexpected error inside intake or privacy is the risk: a library (DuckDB, a parser) that
fails often quotes its input in the message, and Dagster stores a failed step's message and
traceback in its event log. The faults are injected where such a library sits: DuckDB casting a
price strictly (as a regression in ingest/typed.py would), and an e-mail normaliser that raises
with the address (as a library could). The CLI run executes in-process, so the patches apply.
"""

from __future__ import annotations

import pytest
from conftest import deliver, write_minimal_sector
from privacy_scan import find_identifiers

from publieksdata import cli

SECRET_EMAIL = "lek.persoon@voorbeeld.nl"
SECRET_VALUE = "GEHEIM4711"


def tickets(price: str) -> str:
    return (
        "ticket_id,order_id,event_id,event_start,sold_at,price,email,last_name\n"
        f"T1,O1,E1,2025-03-01 20:00,2025-02-01 10:00,{price},{SECRET_EMAIL},Lekkerkerker\n"
        f"T2,O2,E1,2025-03-01 20:00,2025-02-01 10:00,12.50,ander@voorbeeld.nl,Jansen\n"
    )


def strict_decimal(expr: str, native: bool = False, decimal_point: bool = False) -> str:
    # ingest.typed._decimal's signature
    return f"cast({expr} as decimal(12, 2))"  # raises, quoting the value, on a bad price


def loud_normaliser(value):
    raise ValueError(f"cannot normalise {value!r}")


def strict_email_sql(raw: str) -> str:
    return f"cast(cast({raw} as integer) as varchar)"  # raises, quoting the address


@pytest.mark.parametrize("step", ["intake", "privacy-sql", "privacy-python"])
def test_a_failing_run_writes_the_value_nowhere(home, monkeypatch, capsys, step):
    write_minimal_sector(home)
    if step == "intake":
        monkeypatch.setattr("ingest.typed._decimal", strict_decimal)
        deliver(home, "th_a", "tickets.csv", tickets(SECRET_VALUE))
    elif step == "privacy-sql":
        # the privacy step normalises plain addresses in DuckDB (privacy/keyed_sql.py)
        monkeypatch.setattr("privacy.keyed_sql.email_sql", strict_email_sql)
        deliver(home, "th_a", "tickets.csv", tickets("12.50"))
    else:
        # an address SQL leaves to Python (a zero-width space: Unicode normalisation)
        monkeypatch.setattr("privacy.step.normalise_email", loud_normaliser)
        deliver(home, "th_a", "tickets.csv",
                tickets("12.50").replace(SECRET_EMAIL, SECRET_EMAIL + "\u200b"))  # fmt: skip
    assert cli.main(["run"]) == 1
    err = capsys.readouterr().err
    assert "the job failed in step" in err
    assert len(err.strip().splitlines()) == 1 and "Stack Trace" not in err  # one clear line
    assert SECRET_VALUE not in err and SECRET_EMAIL not in err
    scanned: list[str] = []
    hits = find_identifiers(
        home.root, [SECRET_VALUE, SECRET_EMAIL], skip=("landing", "quarantine"), scanned=scanned
    )
    assert hits == []
    # the delivery waits in quarantine, sealed (encrypted at rest), for the next run
    left = [p for p in home.quarantine.rglob("*") if p.is_file() and ".spill" not in p.parts]
    assert left
    for path in left:
        data = path.read_bytes()
        assert data[:4] == b"PDQ1" and SECRET_EMAIL.encode() not in data
    # the scan reached the run's records: Dagster's event log and the step's compute logs
    assert any(p.startswith("dagster/") and p.endswith(".db") for p in scanned), scanned
    assert any("compute_logs" in p for p in scanned), scanned
    # the failure says what failed and where, without the value
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs(limit=1)
        failures = [
            e.dagster_event.event_specific_data.error
            for e in instance.all_logs(run.run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "STEP_FAILURE"
        ]
    [error] = failures
    text = error.to_string()
    assert SECRET_VALUE not in text and SECRET_EMAIL not in text
    while error.cause is not None:
        error = error.cause
    expected = "ValueError" if step == "privacy-python" else "ConversionException"
    # intake and the privacy step are one step (the single pass)
    assert f"intake and privacy failed: unexpected {expected} in " in error.message
    assert "line" in error.message  # where in our code: a place to start, without the value


def test_a_commit_that_cannot_allocate_names_the_memory_setting(monkeypatch):
    """DuckDB reports a commit that runs out of memory as a TransactionException ("could not
    allocate block"); it reads as the step's memory setting, any other one stays withheld."""
    import duckdb
    import pytest

    from orchestration.withheld import values_withheld
    from publieksdata.settings import PublieksdataError

    monkeypatch.setenv("PUBLIEKSDATA_PRIVACY_MEMORY", "3GB")
    monkeypatch.setenv("PUBLIEKSDATA_WORK_MEMORY", "1GB")
    full = "Failed to commit: could not allocate block of size 256.0 KiB (1.8 GiB/1.8 GiB used)"
    # the setting is the one the caller names, whatever the step is called
    with pytest.raises(PublieksdataError, match=r"loading ran out of memory: .*PUBLIEKSDATA_PRIVACY_MEMORY=3GB"):  # fmt: skip
        with values_withheld("loading", memory_setting="PUBLIEKSDATA_PRIVACY_MEMORY"):
            raise duckdb.TransactionException(full)
    with pytest.raises(PublieksdataError, match=r"privacy ran out of memory: .*PUBLIEKSDATA_WORK_MEMORY=1GB"):  # fmt: skip
        with values_withheld("privacy"):
            raise duckdb.TransactionException(full)
    with pytest.raises(KeyError):  # a setting that is not a memory limit: a defect, found early
        with values_withheld("privacy", memory_setting="PUBLIEKSDATA_HOME"):
            pass
    with pytest.raises(PublieksdataError, match="its message is withheld") as caught:
        with values_withheld("privacy", memory_setting="PUBLIEKSDATA_PRIVACY_MEMORY"):
            raise duckdb.TransactionException("Conflict on tuple 'jan@example.nl'")
    assert "jan@example.nl" not in str(caught.value)
