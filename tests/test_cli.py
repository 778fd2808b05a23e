"""The command line's promises (interfaces.md, "Command line"): `init` makes the data home,
registry and keyring; an error is one clear line on stderr, never a traceback; a setting the
disclosure rules refuse is refused before anything runs."""

from __future__ import annotations

from conftest import deliver, write_minimal_sector

from publieksdata import cli


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in err and "Stack Trace" not in err
    return lines[0]


def test_init_creates_an_empty_registry_and_keeps_one_that_is_there(home, capsys):
    home.registry.unlink(missing_ok=True)
    assert cli.main(["init"]) == 0
    assert home.registry.read_text() == "code,name,discipline,pc4\n"
    assert "member registry" in capsys.readouterr().out
    home.registry.write_text("code,name,discipline,pc4\nth_a,Theater A,theater,1011\n")
    assert cli.main(["init"]) == 0
    assert "th_a,Theater A" in home.registry.read_text()


def test_a_run_right_after_init_says_what_is_missing_in_one_line(home, capsys):
    assert cli.main(["init"]) == 0
    capsys.readouterr()
    assert cli.main(["run"]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith("publieksdata run: the job failed in step reference_data: ")
    assert "publieksdata reference --cbs-stats" in line
    # with -v the same failure shows Dagster's record of it, traces and all
    assert cli.main(["-v", "run"]) == 1
    assert "Stack Trace" in capsys.readouterr().err


def test_a_refused_k_stops_before_anything_is_taken(home, monkeypatch, capsys):
    write_minimal_sector(home)
    upload = deliver(home, "th_a", "tickets.csv", "ticket_id,sold_at,price\nT1,2025-01-01,1\n")
    monkeypatch.setenv("PUBLIEKSDATA_K", "3")
    for command in (["run"], ["init"], ["keys", "rotate"], ["erase", "--email", "-"]):
        assert cli.main(command) == 1
        assert "PUBLIEKSDATA_K=3 is refused" in one_line(capsys.readouterr().err)
    assert upload.exists()
    assert not home.warehouse.exists()


def test_a_sector_of_nothing_is_refused_in_one_line(home, capsys):
    home.registry.unlink(missing_ok=True)
    for command in (["generate", "--institutions", "0"], ["generate", "--years", "-1"],
                    ["demo", "--persons", "0"]):  # fmt: skip
        assert cli.main(command) == 1
        line = one_line(capsys.readouterr().err)
        assert "must be at least 1" in line and "unexpected" not in line
    assert not home.registry.exists()
    assert not any(home.landing.iterdir())
