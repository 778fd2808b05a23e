"""The real CBS PC4 file (its shape, with CBS's secret-value codes) becomes reference/pc4.csv."""

import csv

from ingest.cbs import load_cbs_pc4
from ingest.reference import load_reference


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
