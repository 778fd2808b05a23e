"""Tests for the synthetic sector generator (publieksdata.synthetic)."""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata

import numpy as np
import pandas as pd
import pytest

from publieksdata.synthetic import DISCIPLINES, generate_sector

SMALL = {"institutions": 8, "persons": 1500, "years": 2, "seed": 7, "end_year": 2025}
PC4_COLUMNS = [
    "pc4",
    "gemeente_code",
    "gemeente_naam",
    "provincie",
    "lat",
    "lon",
    "aantal_inwoners",
    "aantal_inwoners_0_tot_15_jaar",
    "aantal_inwoners_15_tot_25_jaar",
    "aantal_inwoners_25_tot_45_jaar",
    "aantal_inwoners_45_tot_65_jaar",
    "aantal_inwoners_65_jaar_en_ouder",
]
REQUIRED = ["ticket_id", "order_id", "event_id", "event_start", "sold_at", "price"]
ALIASES = {
    "ticketnummer": "ticket_id",
    "bestelnummer": "order_id",
    "voorstelling": "event_id",
    "evenement": "event_id",
    "verkoopdatum": "sold_at",
    "prijs": "price",
    "kanaal": "channel",
    "e-mail": "email",
    "emailadres": "email",
    "telefoon": "phone",
    "telefoonnummer": "phone",
    "voornaam": "first_name",
    "achternaam": "last_name",
    "straat": "street",
    "huisnummer": "house_number",
    "woonplaats": "city",
    "geboortedatum": "birth_date",
    "geslacht": "gender",
}


@pytest.fixture(scope="module")
def sector(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    summary = generate_sector(home, **SMALL)
    truth = json.loads((home / "synthetic" / "truth.json").read_text(encoding="utf-8"))
    return home, summary, truth


def _files(home, dialect, truth):
    codes = [c for c, v in truth["institutions"].items() if v["dialect"] == dialect]
    return [f for c in codes for f in sorted((home / "landing" / c).glob(f"{c}_tickets_*"))]


def _read(path, dialect):
    if dialect == "canonical":
        df = pd.read_csv(path, sep=",", encoding="utf-8", dtype=str, keep_default_na=False)
    elif dialect == "dutch_excel":
        df = pd.read_csv(path, sep=";", encoding="cp1252", dtype=str, keep_default_na=False)
    elif dialect == "parquet":
        df = pd.read_parquet(path)
    else:
        df = pd.read_excel(path, engine="openpyxl")
    df.columns = [ALIASES.get(c.strip().lower(), c.strip().lower()) for c in df.columns]
    return df


def test_summary_and_layout(sector):
    home, summary, truth = sector
    assert summary["institutions"] == 8
    assert summary["persons"] == 1500
    assert summary["years"] == [2024, 2025]
    assert summary["tickets"] > 0
    landing = list((home / "landing").rglob("*.*"))
    assert summary["deliveries"] == len(landing) == 8 * (1 + 2)
    reg = pd.read_csv(home / "institutions.csv", dtype=str)
    assert list(reg.columns) == ["code", "name", "discipline", "pc4", "gemeente_code"]
    assert reg["code"].str.fullmatch(r"[a-z0-9_]{2,32}").all()
    assert reg["code"].is_unique
    assert reg["discipline"].isin(DISCIPLINES).all()
    ref = pd.read_csv(home / "reference" / "pc4.csv", dtype={"pc4": str})
    assert reg["pc4"].isin(ref["pc4"]).all()
    for code in reg["code"]:
        assert (home / "landing" / code / f"{code}_events.csv").exists()


def test_deterministic_by_seed(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_sector(a, **SMALL)
    generate_sector(b, **SMALL)
    generate_sector(c, **{**SMALL, "seed": 8})
    for rel in ("institutions.csv", "reference/pc4.csv", "synthetic/truth.json"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    files_a = sorted(p.relative_to(a) for p in (a / "landing").rglob("*.*"))
    files_b = sorted(p.relative_to(b) for p in (b / "landing").rglob("*.*"))
    assert files_a == files_b
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "synthetic/truth.json").read_bytes() != (c / "synthetic/truth.json").read_bytes()


def test_regenerate_overwrites(tmp_path):
    first = generate_sector(tmp_path, **SMALL)
    second = generate_sector(tmp_path, **SMALL)
    assert first == second
    assert len(list((tmp_path / "landing").rglob("*.*"))) == second["deliveries"]


def test_pc4_reference(sector):
    home, _, _ = sector
    ref = pd.read_csv(home / "reference" / "pc4.csv", dtype={"pc4": str, "gemeente_code": str})
    assert list(ref.columns) == PC4_COLUMNS
    assert ref["pc4"].str.fullmatch(r"[1-9]\d{3}").all() and ref["pc4"].is_unique
    assert 200 <= len(ref) <= 1000
    assert ref["gemeente_code"].str.fullmatch(r"GM\d{4}").all()
    assert 30 <= ref["gemeente_code"].nunique() <= 60
    assert ref["provincie"].nunique() == 12
    assert ref["lat"].between(50.8, 53.5).all() and ref["lon"].between(3.4, 7.2).all()
    assert ref["aantal_inwoners"].between(500, 25_000).all()
    ages = ref[PC4_COLUMNS[7:]].sum(axis=1)
    assert (ages == ref["aantal_inwoners"]).all()


@pytest.mark.parametrize("dialect", ["canonical", "dutch_excel", "parquet", "xlsx"])
def test_dialect_files_readable(sector, dialect):
    home, _, truth = sector
    files = _files(home, dialect, truth)
    assert files, f"no {dialect} deliveries"
    suffix = {"parquet": ".parquet", "xlsx": ".xlsx"}.get(dialect, ".csv")
    for f in files:
        assert f.suffix == suffix
        df = _read(f, dialect)
        assert len(df) > 0
        assert set(REQUIRED) <= set(df.columns), f
        assert df["ticket_id"].astype(str).is_unique
        assert set(df["status"]) <= {"sold", "cancelled", "refunded"}
        if dialect in ("parquet", "xlsx"):
            assert pd.api.types.is_datetime64_any_dtype(df["event_start"])
            assert pd.api.types.is_datetime64_any_dtype(df["sold_at"])
            assert pd.api.types.is_float_dtype(df["price"])
            assert (df["sold_at"] <= df["event_start"]).all()
        if dialect == "xlsx":
            assert len(df) < 20_000


def test_canonical_format(sector):
    home, _, truth = sector
    df = _read(_files(home, "canonical", truth)[0], "canonical")
    assert df["event_start"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()
    assert df["price"].str.fullmatch(r"\d+\.\d\d").all()
    assert df["research_opt_out"].isin(["true", "false"]).all()
    start = pd.to_datetime(df["event_start"])
    sold = pd.to_datetime(df["sold_at"])
    assert (sold <= start).all()
    assert ((start - sold).dt.days <= 180).all()


def test_dutch_csv_is_cp1252_with_decimal_comma(sector):
    home, _, truth = sector
    files = _files(home, "dutch_excel", truth)
    raw = b"".join(f.read_bytes() for f in files)
    assert b"\xe9" in raw or b"\xeb" in raw or b"\xef" in raw  # é / ë / ï in cp1252
    with_accent = [f for f in files if re.search(rb"[\xe9\xeb\xef]", f.read_bytes())]
    assert with_accent
    for f in with_accent:
        with pytest.raises(UnicodeDecodeError):
            f.read_bytes().decode("utf-8")
    for f in files:
        header = f.read_bytes().split(b"\r\n" if b"\r\n" in f.read_bytes() else b"\n")[0]
        assert header.count(b";") >= 5
        df = pd.read_csv(f, sep=";", encoding="cp1252", dtype=str, keep_default_na=False)
        price = df[[c for c in df.columns if c.lower() == "prijs"][0]]
        assert price.str.fullmatch(r"\d+,\d\d").all()
        when = df[[c for c in df.columns if c.lower() == "verkoopdatum"][0]]
        assert when.str.fullmatch(r"\d\d-\d\d-\d{4} \d\d:\d\d").all()
        numeric = pd.read_csv(f, sep=";", encoding="cp1252", decimal=",")
        assert pd.api.types.is_float_dtype(numeric[price.name])
        types = df[[c for c in df.columns if c.lower() == "ticket_type"][0]]
        assert set(types) <= {
            "regulier",
            "korting",
            "vrijkaart",
            "abonnement",
            "cjp",
            "museumkaart",
        }


def test_events_files(sector):
    home, _, truth = sector
    for code in truth["institutions"]:
        ev = pd.read_csv(home / "landing" / code / f"{code}_events.csv", dtype=str)
        assert list(ev.columns) == [
            "event_id",
            "starts_at",
            "discipline",
            "event_name",
            "venue",
            "capacity",
        ]
        assert ev["event_id"].is_unique
        assert ev["discipline"].isin(DISCIPLINES).all()
        cap = pd.to_numeric(ev["capacity"])
        assert (cap.dropna() > 0).all()
        years = pd.to_datetime(ev["starts_at"]).dt.year
        assert years.isin(truth["years"]).all()


def test_truth_structure(sector):
    home, summary, truth = sector
    reg = pd.read_csv(home / "institutions.csv", dtype=str)
    assert truth["seed"] == 7
    assert truth["years"] == [2024, 2025]
    assert set(truth["institutions"]) == set(reg["code"])
    dialects = {v["dialect"] for v in truth["institutions"].values()}
    assert dialects == {"canonical", "dutch_excel", "parquet", "xlsx"}
    total = 0
    for v in truth["institutions"].values():
        assert v["discipline"] in DISCIPLINES
        assert set(v["years"]) == {"2024", "2025"}
        for y in v["years"].values():
            assert y["tickets"] > 0
            assert 0 <= y["n_persons"] <= y["tickets"]
            assert y["revenue"] >= 0
            total += y["tickets"]
    assert total == sum(s["tickets"] for s in truth["sector"].values())
    assert 0 < total < summary["tickets"]  # some cancelled / refunded rows
    text = (home / "synthetic" / "truth.json").read_text(encoding="utf-8")
    assert "@" not in text and not re.search(r"\b06\d{8}\b", text)


def _norm_phone(v: str) -> str:
    d = re.sub(r"\D", "", v)
    if not d:
        return ""
    if v.strip().startswith("+"):
        return d
    if d.startswith("00"):
        return d[2:]
    return "31" + d[1:] if d.startswith("0") else d


def test_truth_matches_a_recount(sector):
    """Recount the truth from the files, applying the delivery standard's person rules."""
    home, _, truth = sector
    frames = []
    for code, v in truth["institutions"].items():
        dialect = v["dialect"]
        for f in sorted((home / "landing" / code).glob(f"{code}_tickets_*")):
            df = _read(f, dialect).astype(object).where(lambda d: d.notna(), "")
            n = len(df)

            def col(name, df=df, n=n):
                return df[name].astype(str).str.strip() if name in df else pd.Series([""] * n)

            dayfirst = dialect == "dutch_excel"
            birth = pd.to_datetime(col("birth_date").replace("", None), dayfirst=dayfirst)
            price = col("price").str.replace(",", ".").astype(float)
            frames.append(
                pd.DataFrame(
                    {
                        "inst": code,
                        "year": pd.to_datetime(df["event_start"], dayfirst=dayfirst).dt.year,
                        "sold": col("status").eq("sold"),
                        "price": price,
                        "cid": col("customer_id"),
                        "email": col("email").map(
                            lambda s: unicodedata.normalize("NFKC", s).strip().lower()
                        ),
                        "phone": col("phone").map(_norm_phone),
                        "fallback": col("last_name")
                        + "|"
                        + birth.dt.strftime("%Y-%m-%d").fillna("")
                        + "|"
                        + col("postcode").str.replace(" ", "").str.upper(),
                        "has_fb": (col("last_name") != "")
                        & birth.notna()
                        & col("postcode").str.fullmatch(r"\d{4} ?[A-Za-z]{2}"),
                        "opt": col("research_opt_out").str.lower().isin(["true", "ja", "1"]),
                    }
                )
            )
    rows = pd.concat(frames, ignore_index=True)
    skey = np.where(
        rows["email"] != "",
        "e:" + rows["email"],
        np.where(
            rows["phone"] != "",
            "p:" + rows["phone"],
            np.where(rows["has_fb"], "f:" + rows["fallback"], ""),
        ),
    )
    # within an institution, rows sharing a customer_id are one person
    parent: dict[str, str] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    cid = np.where(rows["cid"] != "", rows["inst"] + "#c:" + rows["cid"], "")
    sk = np.where(skey != "", rows["inst"] + "#" + skey, "")
    for a, b in zip(cid, sk, strict=True):
        if a and b:
            parent[find(a)] = find(b)
    person = [find(a) if a else (find(b) if b else "") for a, b in zip(cid, sk, strict=True)]
    rows["person"] = person
    rows["skey"] = skey
    counted = rows["sold"] & ~rows["opt"] & (rows["person"] != "")
    for code, v in truth["institutions"].items():
        for year, t in v["years"].items():
            m = (rows["inst"] == code) & (rows["year"] == int(year))
            assert int((m & rows["sold"]).sum()) == t["tickets"], (code, year)
            assert round(rows.loc[m & rows["sold"], "price"].sum(), 2) == t["revenue"]
            assert rows.loc[m & counted, "person"].nunique() == t["n_persons"], (code, year)
    for year, t in truth["sector"].items():
        m = counted & (rows["year"] == int(year)) & (rows["skey"] != "")
        assert rows.loc[m, "skey"].nunique() == t["n_persons"], year


def test_identifier_variants_present(sector):
    home, _, truth = sector
    frames = [_read(f, "canonical") for f in _files(home, "canonical", truth)]
    frames += [_read(f, "dutch_excel") for f in _files(home, "dutch_excel", truth)]
    df = pd.concat(frames, ignore_index=True)
    email = df["email"][df["email"] != ""]
    assert (email != email.str.strip()).any()  # leading / trailing spaces
    assert (email.str.strip() != email.str.strip().str.lower()).any()  # case variants
    phone = df["phone"][df["phone"] != ""]
    assert phone.str.fullmatch(r"06\d{8}").any()
    assert phone.str.fullmatch(r"06-\d{8}").any()
    assert phone.str.fullmatch(r"\+31 6 \d{4} \d{4}").any()
    assert phone.str.fullmatch(r"00316\d{8}").any()
    ident = (df["customer_id"] != "") | (df["email"] != "") | (df["phone"] != "")
    assert (~ident & (df["last_name"] == "")).any()  # anonymous rows
    assert (df["customer_id"] != "").any() and ((df["customer_id"] == "") & ident).any()
    assert df["status"].isin(["cancelled", "refunded"]).any()
    assert df["research_opt_out"].isin(["true", "ja"]).any()


def test_end_year_defaults_to_this_year(tmp_path):
    summary = generate_sector(tmp_path, institutions=3, persons=200, years=1, seed=1)
    assert summary["years"] == [dt.date.today().year]


def test_invalid_sizes(tmp_path):
    with pytest.raises(ValueError):
        generate_sector(tmp_path, institutions=0)
