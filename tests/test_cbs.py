"""The real CBS PC4 file (its shape, with CBS's secret-value codes) becomes reference/pc4.csv."""

import csv

import pytest

from ingest.cbs import CBS_AGE_COLUMNS, load_cbs_pc4
from ingest.reference import load_reference
from publieksdata.settings import PublieksdataError


def test_cbs_kerncijfers_become_the_reference_set(home, tmp_path):
    stats = tmp_path / "cbs_pc4_2024_kerncijfers.csv"
    stats.write_text(
        "postcode,aantal_inwoners,aantal_mannen,aantal_inwoners_0_tot_15_jaar,"
        "aantal_inwoners_15_tot_25_jaar,aantal_inwoners_25_tot_45_jaar,"
        "aantal_inwoners_45_tot_65_jaar,aantal_inwoners_65_jaar_en_ouder\n"
        "1011,9815,4900,800,1500,3600,2500,1415\n"
        "1012,-99997,-99997,-99997,-99997,-99997,-99997,-99997\n"
        "9999,10,5,1,1,3,3,2\n"
    )
    areas = tmp_path / "pc4_areas.csv"
    areas.write_text(
        "pc4,gemeente_code,gemeente_naam,provincie,lat,lon\n"
        "1011,GM0363,Amsterdam,Noord-Holland,52.3731,4.9033\n"
        "1012,GM0363,Amsterdam,Noord-Holland,52.3745,4.8960\n"
    )
    assert load_cbs_pc4(home, stats, areas) == 2
    rows = list(csv.DictReader(home.reference_pc4.open()))
    assert rows[0]["pc4"] == "1011" and rows[0]["aantal_inwoners"] == "9815"
    assert rows[1]["aantal_inwoners"] == ""  # CBS secret value -> unknown, never -99997
    home.registry.write_text("code,name,discipline,pc4\nth_a,Theater A,theater,1011\n")
    assert load_reference(home)["pc4_areas"] == 2


def test_cli_reference_reports_a_missing_column_in_one_line(home, tmp_path, capsys):
    from publieksdata import cli

    (tmp_path / "stats.csv").write_text("postcode,aantal_inwoners\n1011,5\n")
    (tmp_path / "areas.csv").write_text("pc4\n1011\n")
    code = cli.main(["reference", "--cbs-stats", str(tmp_path / "stats.csv"), "--areas",
                     str(tmp_path / "areas.csv")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "lacks CBS column" in err[0]


def test_an_area_without_a_centroid_is_refused_in_one_line_and_replaces_nothing(
    home, tmp_path, capsys
):
    # every PC4 needs lat/lon: without it an area's persons would be counted in market_area but
    # not in market_catchment, and the catchment's disclosure rules need both to add up
    from publieksdata import cli

    home.registry.write_text("code,name,discipline,pc4\nth_a,Theater A,theater,1011\n")
    good = "pc4,gemeente_code,gemeente_naam,provincie,lat,lon,aantal_inwoners\n1011,GM0363,A,NH,52.37,4.90,5\n"
    home.reference_pc4.parent.mkdir(parents=True, exist_ok=True)
    home.reference_pc4.write_text(good)
    load_reference(home)
    areas = tmp_path / "areas.csv"
    areas.write_text("pc4,gemeente_code,gemeente_naam,provincie,lat,lon\n"
                     "1011,GM0363,A,NH,52.37,4.90\n1012,GM0363,A,NH,,4.89\n1013,GM0363,A,NH,north,4.88\n")  # fmt: skip
    stats = tmp_path / "stats.csv"
    stats.write_text(",".join(("postcode", *CBS_AGE_COLUMNS)) + "\n"
                     + "".join(f"{pc4},5,1,1,1,1,1\n" for pc4 in (1011, 1012, 1013)))  # fmt: skip
    code = cli.main(["reference", "--cbs-stats", str(stats), "--areas", str(areas)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert "2 PC4 area(s) without a valid lat/lon (for example 1012, 1013)" in err[0]
    assert home.reference_pc4.read_text() == good  # the reference in place is kept
    # a reference file edited by hand is refused at the run, before anything is replaced
    home.reference_pc4.write_text(good + "1014,GM0363,A,NH,52.36,,5\n")
    with pytest.raises(PublieksdataError, match=r"1 PC4 area\(s\) without a valid lat/lon .*1014"):
        load_reference(home)


def test_members_the_market_products_cannot_place_are_named(home):
    # a touring company without a PC4, a typo'd PC4: no distances for them (n_persons 0 in
    # market_catchment), which the reference step says in a warning and its metadata
    home.registry.write_text("code,name,discipline,pc4\nth_a,Theater A,theater,1011\n"
                             "tour_b,Tour B,theater,\nth_c,Theater C,theater,9999\n")  # fmt: skip
    home.reference_pc4.parent.mkdir(parents=True, exist_ok=True)
    home.reference_pc4.write_text("pc4,gemeente_code,gemeente_naam,provincie,lat,lon,aantal_inwoners\n"
                                  "1011,GM0363,A,NH,52.37,4.90,5\n")  # fmt: skip
    assert load_reference(home)["without_location"] == ["th_c", "tour_b"]
