"""Synthetic sector generator: registry, PC4 reference data and deliveries.

``generate_sector(home)`` writes a complete, deterministic (by seed) synthetic
cultural sector into a data home:

- ``institutions.csv``            member registry (code,name,discipline,pc4,gemeente_code)
- ``reference/pc4.csv``           synthetic PC4 reference in CBS column names
- ``landing/<code>/<code>_events.csv``          events, canonical UTF-8 CSV
- ``landing/<code>/<code>_tickets_<year>.*``    tickets in three export dialects:
  canonical CSV, Dutch Excel CSV (cp1252, ``;``, decimal comma, Dutch headers),
  and binary (Parquet for larger, XLSX for the smallest institutions)
- ``synthetic/truth.json``        the generated truth, aggregates only

Everything is vectorised with numpy / pyarrow: there is no Python loop over
tickets or persons, only over institutions and years.

Identity model (so that the truth is well defined): every person has one
sector-wide identifier type (e-mail, phone, or the fallback last name + birth
date + PC6) and, per (person, institution), one consistent *profile* that
decides which identifiers appear on that person's rows at that institution.
No profile ever gives one person two unlinkable identities at an institution,
and a row's first present sector-wide key (e-mail, then phone, then fallback)
is always the person's own key type. The municipality names, codes and
centroids are approximate and the populations invented: the reference data is
synthetic and must not be used as real CBS data.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import pathlib
import unicodedata
import zipfile

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["DISCIPLINES", "generate_sector"]

DISCIPLINES = (
    "theater",
    "muziek",
    "dans",
    "opera",
    "cabaret",
    "jeugd",
    "museum",
    "erfgoed",
    "beeldende_kunst",
    "film",
    "festival",
    "overig",
)
_ND = len(DISCIPLINES)
_D = {d: i for i, d in enumerate(DISCIPLINES)}
_INST_DISC_W = np.array([0.19, 0.17, 0.05, 0.03, 0.05, 0.04, 0.17, 0.06, 0.05, 0.08, 0.05, 0.06])
_PERSON_DISC_W = np.array([0.20, 0.17, 0.05, 0.04, 0.06, 0.04, 0.18, 0.05, 0.04, 0.10, 0.04, 0.03])
_PREFIX = ("th", "mu", "da", "op", "ca", "je", "mus", "erf", "bk", "fi", "fe", "ov")

# kinds of programming: performances, daily admissions, screenings, festival days
_PERF, _DAILY, _FILM, _FEST = 0, 1, 2, 3
_DISC_KIND = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 3, 0])
_PRICE_RANGE = np.array(
    [[15, 45], [12, 55], [15, 40], [35, 150], [18, 35], [8, 18], [12, 25], [8, 18], [8, 20]]
    + [[8, 13], [25, 120], [5, 30]],
    dtype=float,
)
_ANON_RANGE = {_PERF: (0.02, 0.10), _DAILY: (0.45, 0.75), _FILM: (0.30, 0.60), _FEST: (0.10, 0.30)}
_LEAD_MEAN_DAYS = np.array([35, 40, 35, 70, 45, 20, 4, 3, 3, 1.5, 80, 15], dtype=float)

_TICKET_TYPES = ("regular", "discount", "free", "subscription", "cjp", "museumkaart")
_TICKET_TYPES_NL = ("regulier", "korting", "vrijkaart", "abonnement", "cjp", "museumkaart")
_TYPE_PRICE_FACTOR = np.array([1.0, 0.8, 0.0, 0.85, 0.7, 0.0])
_TYPE_P = {
    _PERF: [0.64, 0.15, 0.04, 0.11, 0.06, 0.0],
    _DAILY: [0.40, 0.10, 0.10, 0.0, 0.05, 0.35],
    _FILM: [0.70, 0.20, 0.02, 0.03, 0.05, 0.0],
    _FEST: [0.85, 0.08, 0.04, 0.0, 0.03, 0.0],
}
_CHANNELS = ("online", "box_office", "phone", "reseller")
_STATUSES = ("sold", "cancelled", "refunded")

# identity profiles per (person, institution)
_FULL, _CID_PARTIAL, _CID_ONLY, _EMAIL_ONLY, _PHONE_ONLY, _CID_PHONE, _FALLBACK = range(7)
_PROFILE_NAMES = (
    "full",
    "cid_partial_email",
    "cid_only",
    "email_only",
    "phone_only",
    "cid_phone",
    "fallback",
)
# sector-wide key type per person
_T_EMAIL, _T_PHONE, _T_FALLBACK = 0, 1, 2

_CANONICAL, _DUTCH, _BINARY = "canonical", "dutch_excel", "binary"
_XLSX_MAX_ROWS = 20_000

# gemeente_code, name, province, lat, lon, first pc4, number of pc4 areas (approximate)
_MUNICIPALITIES = (
    ("GM0363", "Amsterdam", "Noord-Holland", 52.372, 4.900, 1011, 40),
    ("GM0599", "Rotterdam", "Zuid-Holland", 51.922, 4.479, 3011, 32),
    ("GM0518", "'s-Gravenhage", "Zuid-Holland", 52.078, 4.300, 2491, 28),
    ("GM0344", "Utrecht", "Utrecht", 52.091, 5.122, 3511, 22),
    ("GM0772", "Eindhoven", "Noord-Brabant", 51.441, 5.478, 5611, 16),
    ("GM0014", "Groningen", "Groningen", 53.219, 6.567, 9711, 14),
    ("GM0855", "Tilburg", "Noord-Brabant", 51.555, 5.091, 5011, 12),
    ("GM0034", "Almere", "Flevoland", 52.371, 5.222, 1311, 10),
    ("GM0758", "Breda", "Noord-Brabant", 51.589, 4.776, 4811, 10),
    ("GM0268", "Nijmegen", "Gelderland", 51.842, 5.853, 6511, 10),
    ("GM0202", "Arnhem", "Gelderland", 51.985, 5.899, 6811, 9),
    ("GM0392", "Haarlem", "Noord-Holland", 52.381, 4.637, 2011, 9),
    ("GM0153", "Enschede", "Overijssel", 52.222, 6.894, 7511, 8),
    ("GM0200", "Apeldoorn", "Gelderland", 52.211, 5.970, 7311, 8),
    ("GM0307", "Amersfoort", "Utrecht", 52.156, 5.388, 3811, 8),
    ("GM0479", "Zaanstad", "Noord-Holland", 52.457, 4.814, 1501, 7),
    ("GM0796", "'s-Hertogenbosch", "Noord-Brabant", 51.697, 5.304, 5211, 8),
    ("GM0193", "Zwolle", "Overijssel", 52.516, 6.083, 8011, 7),
    ("GM0546", "Leiden", "Zuid-Holland", 52.160, 4.497, 2311, 7),
    ("GM0935", "Maastricht", "Limburg", 50.851, 5.691, 6211, 7),
    ("GM0505", "Dordrecht", "Zuid-Holland", 51.814, 4.669, 3311, 6),
    ("GM0637", "Zoetermeer", "Zuid-Holland", 52.057, 4.493, 2711, 6),
    ("GM0228", "Ede", "Gelderland", 52.040, 5.665, 6711, 5),
    ("GM0080", "Leeuwarden", "Fryslân", 53.201, 5.800, 8911, 6),
    ("GM0150", "Deventer", "Overijssel", 52.255, 6.163, 7411, 5),
    ("GM0503", "Delft", "Zuid-Holland", 52.012, 4.357, 2611, 6),
    ("GM0361", "Alkmaar", "Noord-Holland", 52.632, 4.748, 1811, 5),
    ("GM0983", "Venlo", "Limburg", 51.370, 6.172, 5911, 5),
    ("GM0794", "Helmond", "Noord-Brabant", 51.482, 5.661, 5701, 5),
    ("GM0114", "Emmen", "Drenthe", 52.785, 6.897, 7811, 5),
    ("GM0402", "Hilversum", "Noord-Holland", 52.223, 5.176, 1211, 5),
    ("GM0106", "Assen", "Drenthe", 52.993, 6.562, 9401, 4),
    ("GM0687", "Middelburg", "Zeeland", 51.499, 3.611, 4331, 4),
    ("GM0995", "Lelystad", "Flevoland", 52.518, 5.471, 8211, 4),
    ("GM0917", "Heerlen", "Limburg", 50.888, 5.979, 6411, 5),
    ("GM0441", "Hoorn", "Noord-Holland", 52.643, 5.060, 1621, 4),
    ("GM0513", "Gouda", "Zuid-Holland", 52.012, 4.711, 2801, 4),
    ("GM0400", "Den Helder", "Noord-Holland", 52.959, 4.760, 1781, 4),
    ("GM0718", "Vlissingen", "Zeeland", 51.443, 3.573, 4381, 3),
    ("GM1883", "Sittard-Geleen", "Limburg", 51.000, 5.869, 6131, 4),
    ("GM0957", "Roermond", "Limburg", 51.194, 5.987, 6041, 3),
    ("GM0828", "Oss", "Noord-Brabant", 51.765, 5.518, 5341, 4),
    ("GM0748", "Bergen op Zoom", "Noord-Brabant", 51.495, 4.292, 4611, 3),
)
_AGE_COLS = (
    "aantal_inwoners_0_tot_15_jaar",
    "aantal_inwoners_15_tot_25_jaar",
    "aantal_inwoners_25_tot_45_jaar",
    "aantal_inwoners_45_tot_65_jaar",
    "aantal_inwoners_65_jaar_en_ouder",
)
_AGE_SHARES = np.array([0.155, 0.125, 0.25, 0.27, 0.20])

_FIRST_F = (
    "Emma Julia Sophie Anna Lotte Sara Eva Lisa Fleur Sanne Anne Femke Iris Noor Tess Maria "
    "Johanna Ingrid Marieke Petra Monique Els Annemiek Wilma Ria Esther Linda Mirjam Saskia "
    "Yasmina Fatima Zoë Chloë Hélène Daniëlle Anaïs Loïs Mariëlle Renée Noëlle Aïcha Cécile"
).split()
_FIRST_M = (
    "Daan Sem Lucas Levi Finn Milan Jesse Thomas Bram Ruben Jan Peter Hans Kees Willem Henk "
    "Gerrit Pieter Mark Erik Dennis Sander Joost Bart Maarten Rob Mohamed Ahmed Youssef Mehmet "
    "Michiel Jeroen René Noël José André Raphaël Joël Frédéric Gaël"
).split()
_LAST = (
    "de Jong|Jansen|de Vries|van den Berg|van Dijk|Bakker|Janssen|Visser|Smit|Meijer|de Boer|"
    "Mulder|de Groot|Bos|Vos|Peters|Hendriks|van Leeuwen|Dekker|Brouwer|de Wit|Dijkstra|Smits|"
    "de Graaf|van der Meer|van der Linden|Kok|Jacobs|de Haan|Vermeulen|van den Heuvel|"
    "van der Veen|van den Broek|de Bruijn|de Bruin|van der Heijden|Schouten|van Beek|Willems|"
    "van Vliet|van de Ven|Hoekstra|Maas|Verhoeven|Koster|van Dam|van der Wal|Prins|Blom|"
    "Huisman|Peeters|Kuipers|Verbeek|El Amrani|Öztürk|Çelik|Geërts|Lefèvre|Müller|Boëtius|"
    "Reijnaerts|Hoëvenaars"
).split("|")
_STREETS = (
    "Kerkstraat|Dorpsstraat|Stationsweg|Molenweg|Schoolstraat|Hoofdstraat|Julianalaan|"
    "Beatrixstraat|Wilhelminastraat|Emmalaan|Parallelweg|Nieuwstraat|Marktplein|Kastanjelaan|"
    "Lindenlaan|Eikenlaan|Prinsengracht|Oranjestraat|Tulpstraat|Rozenstraat|Burgemeesterslaan|"
    "Havenkade|Singel|Vondelstraat|Rembrandtlaan|Van Goghstraat|Zuiderpark|Noordeinde|"
    "Café de Kroonstraat|Rue de l'Église"
).split("|")
_FOREIGN = (  # country, postcode, city
    ("BE", "2000", "Antwerpen"),
    ("BE", "9000", "Gent"),
    ("BE", "8000", "Brugge"),
    ("BE", "3500", "Hasselt"),
    ("DE", "52062", "Aachen"),
    ("DE", "47533", "Kleve"),
    ("DE", "48143", "Münster"),
    ("DE", "40213", "Düsseldorf"),
)
_EMAIL_DOMAINS = (
    "example.com",
    "example.net",
    "example.org",
    "mail.example.com",
    "post.example.net",
)
_PC_LETTERS = np.array([a + b for a in "ABCDEGHJKLMNPRSTVWXZ" for b in "ABCDEGHJKLMNPRSTVWXZ"])
_PC_LETTERS = _PC_LETTERS[~np.isin(_PC_LETTERS, ["SA", "SD", "SS"])]

_TITLES = {
    "theater": [
        "Hamlet",
        "Op hoop van zegen",
        "Max Havelaar",
        "Liefde, dood en verraad",
        "De Gebroeders Leeuwenhart",
        "Wie is er bang voor Virginia Woolf?",
        "Het Achterhuis",
        "Antigone",
        "Kees de jongen",
        "De Avonden",
    ],
    "muziek": [
        "Mahler 5",
        "Avond van de Kleinkunst",
        "Bach, Brahms & Beethoven",
        "Jazz op zondag",
        "Lieder van Schubert",
        "Popronde",
        "Nieuwjaarsconcert",
        "Strijkkwartet in G",
    ],
    "dans": ["Het Zwanenmeer", "De Notenkraker", "Bolero", "Nieuwe choreografen, deel 2"],
    "opera": ["La Traviata", "Die Zauberflöte", "Carmen", "Tosca", "Le nozze di Figaro"],
    "cabaret": ["Try-out: Vers van de pers", "Oudejaarsconference", "Zwart, wit en grijs"],
    "jeugd": ["Kikker en zijn vriendjes", "Pluk van de Petteflet", "Sneeuwwitje (4+)"],
    "film": ["Turks fruit", "Soldaat van Oranje", "Amélie", "Zwartboek", "Le fabuleux destin"],
    "festival": ["Zomerfestival", "Oerol-dag", "Stadsfestival"],
    "overig": ["Lezing: De Stad", "Open podium", "Workshop, schrijven", "Poëzieavond"],
}
_EXHIBITIONS = (
    "Licht, kleur en tijd",
    "De Gouden Eeuw",
    "Modern & hedendaags",
    "Meesters uit de regio",
    "Het verhaal van de stad",
    "Fotografie nu",
)
_INST_NAME = {
    "theater": ["Stadsschouwburg {c}", "Theater aan de Markt {c}", "Theater De Kring {c}"],
    "muziek": ["Muziekcentrum {c}", "Poppodium {c}", "Concertzaal {c}"],
    "dans": ["Dansgezelschap {c}", "Danshuis {c}"],
    "opera": ["Opera {c}", "Operagezelschap {c}"],
    "cabaret": ["Cabaretpodium {c}", "Kleinkunstpodium {c}"],
    "jeugd": ["Jeugdtheater {c}", "Kindertheater {c}"],
    "museum": ["Stedelijk Museum {c}", "Museum {c}", "Historisch Museum {c}"],
    "erfgoed": ["Historisch Centrum {c}", "Erfgoedhuis {c}"],
    "beeldende_kunst": ["Kunsthal {c}", "Centrum Beeldende Kunst {c}"],
    "film": ["Filmhuis {c}", "Filmtheater {c}"],
    "festival": ["Festival {c}", "Zomerfestival {c}"],
    "overig": ["Cultuurhuis {c}", "Cultuurcentrum {c}"],
}


# --------------------------------------------------------------------------- helpers


def _ascii(s: str) -> str:
    s = unicodedata.normalize("NFKD", s)
    return "".join(ch for ch in s if ch.isascii() and ch.isalnum()).lower()


def _slug(s: str) -> str:
    return _ascii(s)[:18]


def _choice_rows(rng: np.random.Generator, weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each entry of ``rows`` draw a column index with probability ∝ weights[row]."""
    w = np.asarray(weights, dtype=np.float64)
    tot = w.sum(axis=1, keepdims=True)
    tot[tot == 0] = 1.0
    cum = np.cumsum(w / tot, axis=1)
    cum[:, -1] = np.where(w.sum(axis=1) > 0, 1.0, cum[:, -1])
    k = w.shape[1]
    flat = (cum + np.arange(w.shape[0])[:, None]).ravel()
    u = rng.random(len(rows))
    pos = np.searchsorted(flat, rows + u, side="right")
    return np.clip(pos - rows * k, 0, k - 1)


def _str(a) -> pa.Array:
    return pa.array(np.asarray(a, dtype=object), type=pa.string())


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _iso(seconds: np.ndarray) -> pa.Array:
    """Seconds since 1970 (naive local time) as ``YYYY-MM-DD HH:MM:SS``."""
    return pc.cast(pa.array(seconds, pa.int64()).cast(pa.timestamp("s")), pa.string())


def _nl_datetime(seconds: np.ndarray) -> pa.Array:
    """``dd-mm-yyyy HH:MM`` (Dutch Excel)."""
    iso = _iso(seconds)

    def sl(a, b):
        return pc.utf8_slice_codeunits(iso, a, b)

    return _join(sl(8, 10), "-", sl(5, 7), "-", sl(0, 4), " ", sl(11, 16))


def _iso_date(days: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(days.astype(np.int32), pa.int32()).cast(pa.date32()), pa.string())


def _nl_date(days: np.ndarray) -> pa.Array:
    iso = _iso_date(days)

    def sl(a, b):
        return pc.utf8_slice_codeunits(iso, a, b)

    return _join(sl(8, 10), "-", sl(5, 7), "-", sl(0, 4))


def _mask(arr: pa.Array, keep: np.ndarray) -> pa.Array:
    """Null out entries where ``keep`` is False."""
    return pc.if_else(pa.array(keep), arr, pa.scalar(None, arr.type))


def _pick(codes: np.ndarray, values) -> pa.Array:
    return pc.take(pa.array(list(values), pa.string()), pa.array(codes))


def _money(cents: np.ndarray, sep: str) -> pa.Array:
    eur = pc.cast(pa.array(cents // 100), pa.string())
    ct = pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, "0")
    return _join(eur, sep, ct)


# --------------------------------------------------------------------------- reference


def _make_reference(rng: np.random.Generator) -> dict:
    rows = []
    for m, (_code, _name, _prov, lat, lon, start, n) in enumerate(_MUNICIPALITIES):
        span = int(n * 1.5) + 1
        pcs = start + np.sort(rng.choice(span, n, replace=False))
        sigma = 1.5 + 2.5 * np.sqrt(n / 40)
        r = np.minimum(np.abs(rng.normal(0, sigma, n)), 9.5)
        ang = rng.uniform(0, 2 * np.pi, n)
        alat = lat + r * np.sin(ang) / 111.2
        alon = lon + r * np.cos(ang) / (111.2 * np.cos(np.radians(lat)))
        pop = np.clip(rng.lognormal(np.log(6000 + 150 * n), 0.55, n), 500, 25_000).round()
        for j in range(n):
            rows.append((int(pcs[j]), m, alat[j], alon[j], int(pop[j])))
    pc4 = np.array([r[0] for r in rows])
    assert len(np.unique(pc4)) == len(pc4) and pc4.min() >= 1000 and pc4.max() <= 9999
    pop = np.array([r[4] for r in rows], dtype=np.int64)
    shares = rng.dirichlet(_AGE_SHARES * 80, size=len(rows))
    ages = rng.multinomial(pop, shares)
    return {
        "pc4": pc4,
        "muni": np.array([r[1] for r in rows]),
        "lat": np.clip(np.array([r[2] for r in rows]), 50.8, 53.5),
        "lon": np.clip(np.array([r[3] for r in rows]), 3.4, 7.2),
        "pop": pop,
        "ages": ages,
    }


def _reference_table(ref: dict) -> pa.Table:
    mun = _MUNICIPALITIES
    cols = {
        "pc4": _str([f"{p:04d}" for p in ref["pc4"]]),
        "gemeente_code": _str([mun[m][0] for m in ref["muni"]]),
        "gemeente_naam": _str([mun[m][1] for m in ref["muni"]]),
        "provincie": _str([mun[m][2] for m in ref["muni"]]),
        "lat": pa.array(np.round(ref["lat"], 5)),
        "lon": pa.array(np.round(ref["lon"], 5)),
        "aantal_inwoners": pa.array(ref["pop"]),
    }
    for k, c in enumerate(_AGE_COLS):
        cols[c] = pa.array(ref["ages"][:, k])
    return pa.table(cols)


# --------------------------------------------------------------------------- institutions


def _make_institutions(rng: np.random.Generator, ref: dict, n: int) -> dict:
    n_muni = len(_MUNICIPALITIES)
    muni_pop = np.bincount(ref["muni"], weights=ref["pop"], minlength=n_muni)
    w = muni_pop**1.4
    muni = rng.choice(n_muni, n, p=w / w.sum())
    disc = rng.choice(_ND, n, p=_INST_DISC_W / _INST_DISC_W.sum())
    area = np.empty(n, dtype=np.int64)
    for i in range(n):
        cand = np.flatnonzero(ref["muni"] == muni[i])
        area[i] = rng.choice(cand, p=ref["pop"][cand] / ref["pop"][cand].sum())
    size = rng.lognormal(0.0, 1.25, n) * np.where(muni < 4, 1.6, 1.0)
    kind = _DISC_KIND[disc]
    lo = np.array([_ANON_RANGE[k][0] for k in kind])
    hi = np.array([_ANON_RANGE[k][1] for k in kind])
    anon = rng.uniform(lo, hi)
    fam_cycle = np.array([_CANONICAL, _DUTCH, _BINARY])
    family = fam_cycle[rng.permutation(n) % 3]
    codes, names, seen = [], [], {}
    for i in range(n):
        d = DISCIPLINES[disc[i]]
        city = _MUNICIPALITIES[muni[i]][1]
        stem = f"{_PREFIX[disc[i]]}_{_slug(city)}"
        seen[stem] = seen.get(stem, 0) + 1
        codes.append(f"{stem}_{seen[stem]:02d}")
        tmpl = _INST_NAME[d][(seen[stem] - 1) % len(_INST_NAME[d])]
        name = tmpl.format(c=city)
        if seen[stem] > len(_INST_NAME[d]):
            name += f" {seen[stem]}"
        names.append(name)
    return {
        "n": n,
        "code": codes,
        "name": names,
        "disc": disc,
        "kind": kind,
        "muni": muni,
        "area": area,
        "size": size,
        "anon": anon,
        "family": family,
        "price_lvl": rng.uniform(0, 1, n),
        "dutch_variant": rng.integers(0, 2, n),
    }


# --------------------------------------------------------------------------- persons


def _make_persons(rng: np.random.Generator, ref: dict, n: int, end_year: int) -> dict:
    area = rng.choice(len(ref["pc4"]), n, p=ref["pop"] / ref["pop"].sum())
    ages = np.arange(5, 91)
    aw = np.interp(ages, [5, 11, 12, 18, 25, 35, 45, 55, 65, 75, 82, 90],
                   [0.25, 0.3, 0.5, 0.8, 0.9, 0.85, 1.0, 1.3, 1.4, 1.2, 0.6, 0.2])  # fmt: skip
    age = rng.choice(ages, n, p=aw / aw.sum())
    ref_day = (np.datetime64(f"{end_year}-07-01") - np.datetime64("1970-01-01")).astype(int)
    birth = ref_day - np.floor(age * 365.25).astype(np.int64) - rng.integers(0, 365, n)
    gender = rng.choice(3, n, p=[0.55, 0.43, 0.02])  # 0 v, 1 m, 2 x
    female = (gender == 0) | ((gender == 2) & (rng.random(n) < 0.5))
    first_all = _FIRST_F + _FIRST_M
    fw = np.array([3.0 if all(c.isascii() for c in s) else 1.0 for s in first_all])
    nf = len(_FIRST_F)
    ff = rng.choice(nf, n, p=fw[:nf] / fw[:nf].sum())
    fm = nf + rng.choice(len(_FIRST_M), n, p=fw[nf:] / fw[nf:].sum())
    first = np.where(female, ff, fm)
    lw = 1.0 / (np.arange(len(_LAST)) + 8.0)
    last = rng.choice(len(_LAST), n, p=lw / lw.sum())
    house = 1 + rng.geometric(1 / 40, n)
    house_suffix = rng.choice(4, n, p=[0.85, 0.07, 0.04, 0.04])
    letters = rng.integers(0, len(_PC_LETTERS), n)
    # no two persons share the fallback key (last name, birth date, PC6)
    for _ in range(20):
        key = ((last * 60_000 + (birth + 30_000)) * 10_000 + ref["pc4"][area]) * 400 + letters
        _, first_idx = np.unique(key, return_index=True)
        dup = np.ones(n, dtype=bool)
        dup[first_idx] = False
        if not dup.any():
            break
        letters[dup] = rng.integers(0, len(_PC_LETTERS), dup.sum())
    foreign = rng.random(n) < 0.01
    stype = rng.choice(3, n, p=[0.82, 0.12, 0.06])
    stype[foreign] = _T_EMAIL
    # Dutch mobile numbers 06-1.. to 06-5.., unique
    phone = rng.choice(50_000_000, n, replace=False) + 10_000_000
    return {
        "n": n,
        "area": area,
        "birth": birth,
        "gender": gender,
        "first": first,
        "last": last,
        "email_no": rng.permutation(n) + 1,
        "email_fmt": rng.choice(3, n, p=[0.6, 0.25, 0.15]),
        "email_dom": rng.integers(0, len(_EMAIL_DOMAINS), n),
        "phone": phone,
        "street": rng.integers(0, len(_STREETS), n),
        "house": house,
        "house_suffix": house_suffix,
        "letters": letters,
        "foreign": foreign,
        "foreign_idx": rng.integers(0, len(_FOREIGN), n),
        "stype": stype,
        "opt_out": rng.random(n) < 0.012,
        "lam": rng.gamma(0.6, 1.6, n),
        "pref": rng.dirichlet(_PERSON_DISC_W * 4.0, size=n),
    }


def _person_strings(pers: dict, ref: dict) -> dict:
    """Person-level string columns as arrow arrays (indexed by person)."""
    first_all = _FIRST_F + _FIRST_M
    first = pc.take(pa.array(first_all), pa.array(pers["first"]))
    last = pc.take(pa.array(_LAST), pa.array(pers["last"]))
    fa = pc.take(pa.array([_ascii(s) for s in first_all]), pa.array(pers["first"]))
    la = pc.take(pa.array([_ascii(s) for s in _LAST]), pa.array(pers["last"]))
    num = pc.cast(pa.array(pers["email_no"]), pa.string())
    dom = pc.take(pa.array(_EMAIL_DOMAINS), pa.array(pers["email_dom"]))
    fi = pc.utf8_slice_codeunits(fa, 0, 1)
    local = pc.choose(
        pa.array(pers["email_fmt"].astype(np.int8)),
        _join(fa, ".", la, num),
        _join(fi, la, num),
        _join(fa, num),
    )
    email = _join(local, "@", dom)
    phone8 = pc.cast(pa.array(pers["phone"]), pa.string())
    pc4s = _str([f"{p:04d}" for p in ref["pc4"]])
    p4 = pc.take(pc4s, pa.array(pers["area"]))
    lt = pc.take(pa.array(_PC_LETTERS.tolist()), pa.array(pers["letters"]))
    fidx = pa.array(pers["foreign_idx"])
    fpost = pc.take(pa.array([f[1] for f in _FOREIGN]), fidx)
    fcity = pc.take(pa.array([f[2] for f in _FOREIGN]), fidx)
    fcountry = pc.take(pa.array([f[0] for f in _FOREIGN]), fidx)
    foreign = pa.array(pers["foreign"])
    gm_names = pa.array([m[1] for m in _MUNICIPALITIES])
    city = pc.take(gm_names, pa.array(ref["muni"][pers["area"]]))
    suffix = pc.take(pa.array(["", "a", "-2", " bis"]), pa.array(pers["house_suffix"]))
    return {
        "first": first,
        "last": last,
        "email": email,
        "phone8": phone8,
        "street": pc.take(pa.array(_STREETS), pa.array(pers["street"])),
        "house": _join(pc.cast(pa.array(pers["house"]), pa.string()), suffix),
        "pc6_space": pc.if_else(foreign, fpost, _join(p4, " ", lt)),
        "pc6_tight": pc.if_else(foreign, fpost, _join(p4, lt)),
        "city": pc.if_else(foreign, fcity, city),
        "country": pc.if_else(foreign, fcountry, pa.scalar("NL")),
    }


# --------------------------------------------------------------------------- orders


def _distance_km(lat1, lon1, lat2, lon2):
    dy = (lat1 - lat2) * 111.2
    dx = (lon1 - lon2) * 111.2 * np.cos(np.radians(52.2))
    return np.sqrt(dx * dx + dy * dy)


def _make_orders(rng: np.random.Generator, ref: dict, inst: dict, pers: dict, n_years: int):
    n_i, n_p = inst["n"], pers["n"]
    # attraction of institution i for residents of area a
    d = _distance_km(
        ref["lat"][:, None], ref["lon"][:, None], ref["lat"][inst["area"]], ref["lon"][inst["area"]]
    )
    attract = inst["size"][None, :] / (1.0 + (d / 12.0) ** 2) + 0.002 * inst["size"][None, :]
    onehot = np.zeros((n_i, _ND))
    onehot[np.arange(n_i), inst["disc"]] = 1.0
    supply = attract @ onehot  # area x discipline
    n_a = attract.shape[0]
    # stage-2 table: (area, discipline) -> institution
    stage2 = (attract[:, None, :] * onehot.T[None, :, :]).reshape(n_a * _ND, n_i)

    def sample(persons: np.ndarray) -> np.ndarray:
        out = np.empty(len(persons), dtype=np.int64)
        for s in range(0, len(persons), 500_000):  # chunks bound the memory
            p = persons[s : s + 500_000]
            a = pers["area"][p]
            disc = _choice_rows(rng, pers["pref"][p] * supply[a], np.arange(len(p)))
            out[s : s + 500_000] = _choice_rows(rng, stage2, a * _ND + disc)
        return out

    home = sample(np.arange(n_p))
    # activity per year: Markov chain with churn and newcomers
    active = np.zeros((n_p, n_years), dtype=bool)
    stay, join = 0.62, 0.25
    active[:, 0] = rng.random(n_p) < join / (join + 1 - stay)
    for y in range(1, n_years):
        u = rng.random(n_p)
        active[:, y] = np.where(active[:, y - 1], u < stay, u < join)
    n_ord = active * (1 + rng.poisson(pers["lam"][:, None], (n_p, n_years)))
    flat = np.repeat(np.arange(n_p * n_years), n_ord.ravel())
    o_person = flat // n_years
    o_year = flat % n_years
    o_inst = sample(o_person)
    at_home = rng.random(len(o_person)) < 0.35
    o_inst[at_home] = home[o_person[at_home]]
    n_id = len(o_person)
    # anonymous walk-in orders
    id_orders = np.bincount(o_inst * n_years + o_year, minlength=n_i * n_years).reshape(
        n_i, n_years
    )
    r = inst["anon"][:, None]
    # (at least one walk-in per institution-year, so every year has a delivery)
    n_anon = 1 + rng.poisson(id_orders * r / (1 - r) + 1.0 * (inst["kind"][:, None] != _PERF))
    a_flat = np.repeat(np.arange(n_i * n_years), n_anon.ravel())
    o_inst = np.concatenate([o_inst, a_flat // n_years])
    o_year = np.concatenate([o_year, a_flat % n_years])
    o_person = np.concatenate([o_person, np.full(len(a_flat), -1)])
    n_o = len(o_person)
    anon = o_person < 0
    o_nt = np.where(
        anon,
        rng.choice([1, 2, 3, 4], n_o, p=[0.5, 0.35, 0.08, 0.07]),
        rng.choice([1, 2, 3, 4], n_o, p=[0.33, 0.47, 0.08, 0.12]),
    ).astype(np.int64)
    o_status = np.where(anon, 0, rng.choice(3, n_o, p=[0.955, 0.03, 0.015]))
    orders = {
        "inst": o_inst,
        "year": o_year,
        "person": o_person,
        "nt": o_nt,
        "status": o_status,
        "n_identified": n_id,
    }
    _assign_profiles(rng, inst, pers, orders)
    return orders


def _assign_profiles(rng: np.random.Generator, inst: dict, pers: dict, o: dict) -> None:
    n_i = inst["n"]
    ident = o["person"] >= 0
    key = np.where(ident, o["person"] * n_i + o["inst"], -1)
    uniq, pair = np.unique(key, return_inverse=True)
    has_anon = uniq[0] == -1
    if has_anon:
        uniq = uniq[1:]
        pair = pair - 1
    o["pair"] = np.where(ident, pair, -1)
    n_pairs = len(uniq)
    p_person = uniq // n_i
    p_inst = uniq % n_i
    stype = pers["stype"][p_person]
    has_phone_col = inst["family"][p_inst] != _BINARY
    u = rng.random(n_pairs)
    prof = np.select(
        [
            (stype == _T_EMAIL) & (u < 0.68),
            (stype == _T_EMAIL) & (u < 0.80),
            (stype == _T_EMAIL) & (u < 0.88),
            stype == _T_EMAIL,
            (stype == _T_PHONE) & (u < 0.40),
            (stype == _T_PHONE) & (u < 0.85),
            stype == _T_PHONE,
            (stype == _T_FALLBACK) & (u < 0.70),
        ],
        [_FULL, _CID_PARTIAL, _CID_ONLY, _EMAIL_ONLY]
        + [_PHONE_ONLY, _CID_PHONE, _CID_ONLY, _FALLBACK],
        default=_CID_ONLY,
    )
    prof = np.where(np.isin(prof, [_PHONE_ONLY, _CID_PHONE]) & ~has_phone_col, _CID_ONLY, prof)
    # customer numbers: unique within institution, stable per (person, institution)
    order = np.lexsort((rng.random(n_pairs), p_inst))
    rank = np.empty(n_pairs, dtype=np.int64)
    starts = np.searchsorted(p_inst[order], np.arange(n_i))
    rank[order] = np.arange(n_pairs) - np.repeat(starts, np.bincount(p_inst, minlength=n_i))
    cid = 10_000 + 3 * rank + rng.integers(0, 3, n_pairs)
    o["p_person"], o["p_inst"], o["p_prof"], o["p_cid"] = p_person, p_inst, prof, cid
    o["p_birth"] = np.isin(prof, [_FULL, _EMAIL_ONLY, _PHONE_ONLY, _CID_PHONE]) & (
        rng.random(n_pairs) < 0.78
    ) | (prof == _FALLBACK)
    o["p_pc"] = (rng.random(n_pairs) < 0.93) | (prof == _FALLBACK)
    o["p_gender"] = rng.random(n_pairs) < 0.85
    p_phone_full = (prof == _FULL) & has_phone_col & (rng.random(n_pairs) < 0.7)
    # per-order identifier presence
    n_o = len(o["person"])
    oprof = np.where(ident, prof[np.maximum(o["pair"], 0)], -1)
    email_on = np.isin(oprof, [_FULL, _EMAIL_ONLY]) | (
        (oprof == _CID_PARTIAL) & (rng.random(n_o) < 0.5)
    )
    # a cid_partial_email person carries an e-mail on at least one sold order per year
    cand = np.flatnonzero((oprof == _CID_PARTIAL) & (o["status"] == 0))
    _, first = np.unique(o["pair"][cand] * 64 + o["year"][cand], return_index=True)
    email_on[cand[first]] = True
    phone_on = np.isin(oprof, [_PHONE_ONLY, _CID_PHONE]) | (
        (oprof == _FULL) & p_phone_full[np.maximum(o["pair"], 0)]
    )
    o["email_on"] = email_on & ident
    o["phone_on"] = phone_on & ident
    o["cid_on"] = np.isin(oprof, [_FULL, _CID_PARTIAL, _CID_ONLY, _CID_PHONE])
    o["email_var"] = rng.choice(4, n_o, p=[0.75, 0.1, 0.08, 0.07])
    o["phone_fmt"] = rng.choice(5, n_o, p=[0.4, 0.2, 0.15, 0.1, 0.15])
    o["prof"] = oprof


# --------------------------------------------------------------------------- events


def _year_days(year: int):
    days = np.arange(
        np.datetime64(f"{year}-01-01"), np.datetime64(f"{year + 1}-01-01"), dtype="datetime64[D]"
    )
    di = days.astype(np.int64)
    weekday = (di + 3) % 7  # 0 = Monday
    month = days.astype("datetime64[M]").astype(np.int64) % 12
    return di, weekday, month


_MONTH_W_PERF = np.array([1, 1, 1.1, 1, 0.8, 0.5, 0.1, 0.2, 1, 1.1, 1.1, 1.0])
_MONTH_W_DAILY = np.array([0.7, 0.8, 0.9, 1, 1.1, 1, 1.4, 1.5, 0.9, 1, 0.8, 1.1])
_WD_W_PERF = np.array([0.3, 0.6, 0.8, 1.0, 1.3, 1.4, 0.9])
_WD_W_DAILY = np.array([0.0, 0.8, 1.1, 0.9, 1.0, 1.8, 1.8])


def _size_class(tickets: int) -> str:
    return "S" if tickets < 10_000 else "M" if tickets <= 100_000 else "L"


def _make_events(rng, kind: int, disc: int, year: int, n_tickets: int, cap_base: float):
    """Events of one institution-year: start (seconds), capacity, hall, assignment weight."""
    di, wd, month = _year_days(year)
    if kind == _DAILY:
        keep = wd != 0
        day = di[keep]
        mins = np.full(len(day), 600)
        cap = np.full(len(day), cap_base)
        weight = _WD_W_DAILY[wd[keep]] * _MONTH_W_DAILY[month[keep]]
        hall = np.zeros(len(day), dtype=np.int64)
    elif kind == _FEST:
        nd = int(rng.integers(2, 5))
        summer = np.flatnonzero((month >= 5) & (month <= 7) & (wd == 4))
        s = int(rng.choice(summer[: len(summer) - 1]))
        day = di[s : s + nd]
        mins = np.full(len(day), 720)
        cap = np.full(len(day), max(500.0, 1.2 * n_tickets / len(day)))
        weight = rng.uniform(0.7, 1.3, len(day))
        hall = np.zeros(len(day), dtype=np.int64)
    else:
        if kind == _FILM:
            halls = np.array([60, 90, 140, 220])
            n_ev = int(np.clip(round(n_tickets / (halls.mean() * 0.3)), 20, 4000))
            hall = rng.integers(0, 4, n_ev)
            cap = halls[hall].astype(float)
            slots = np.array([810, 960, 1140, 1170, 1290])
            mins = rng.choice(slots, n_ev)
            dw = np.where(wd >= 4, 1.5, 1.0)
        else:
            fill = 0.7
            n_ev = int(np.clip(round(n_tickets / (cap_base * fill)), 4, 600))
            hall = rng.choice(2, n_ev, p=[0.7, 0.3])
            cap = np.where(hall == 0, cap_base, np.round(cap_base * 0.45))
            if disc == _D["jeugd"]:
                mins = rng.choice([660, 840, 900, 930], n_ev)
            else:
                mins = rng.choice([1200, 1215, 1170, 840, 900], n_ev, p=[0.4, 0.25, 0.15, 0.1, 0.1])
            dw = _MONTH_W_PERF[month] * _WD_W_PERF[wd]
        pick = rng.choice(len(di), n_ev, p=dw / dw.sum())
        day = di[pick]
        weight = rng.lognormal(0.0, 0.5, n_ev) * cap
    start = day * 86400 + mins.astype(np.int64) * 60
    order = np.argsort(start, kind="stable")
    return start[order], cap[order], hall[order], weight[order]


# --------------------------------------------------------------------------- writers


def _write_csv(con, table: pa.Table, path: pathlib.Path, delimiter: str, encoding: str) -> None:
    """CSV with a header, quoting only where needed; nulls are empty fields."""
    tmp = path.with_name(path.name + ".tmp")
    target = str(tmp).replace("'", "''")
    con.register("synthetic_out", table)
    try:
        con.execute(
            f"COPY synthetic_out TO '{target}' (FORMAT csv, HEADER, DELIMITER '{delimiter}')"
        )
    finally:
        con.unregister("synthetic_out")
    if encoding.lower() not in ("utf-8", "utf8"):
        data = tmp.read_bytes().decode("utf-8").encode(encoding)
        tmp.write_bytes(data)
    tmp.replace(path)


def _xml_escape(a: pa.Array) -> pa.Array:
    a = pc.replace_substring(a, "&", "&amp;")
    a = pc.replace_substring(a, "<", "&lt;")
    return pc.replace_substring(a, ">", "&gt;")


_XLSX_STATIC = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Tickets" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/styles" Target="styles.xml"/></Relationships>'
    ),
    "xl/styles.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<numFmts count="2"><numFmt numFmtId="164" formatCode="dd-mm-yyyy hh:mm:ss"/>'
        '<numFmt numFmtId="165" formatCode="dd-mm-yyyy"/></numFmts>'
        '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
        '</cellStyleXfs><cellXfs count="3">'
        '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
        "</cellStyles></styleSheet>"
    ),
}


def _write_xlsx(table: pa.Table, path: pathlib.Path) -> None:
    """Minimal, deterministic XLSX writer (one sheet, inline strings, real Excel dates)."""
    n = table.num_rows
    letters = [chr(ord("A") + k) for k in range(table.num_columns)]
    assert len(letters) <= 26
    rownum = pc.cast(pa.array(np.arange(2, n + 2)), pa.string())
    header = "".join(
        f'<c r="{c}1" t="inlineStr"><is><t>{name}</t></is></c>'
        for c, name in zip(letters, table.column_names, strict=True)
    )
    cells = []
    for c, col in zip(letters, table.columns, strict=True):
        col = col.combine_chunks()
        ref = _join(f'<c r="{c}', rownum)
        t = col.type
        if pa.types.is_string(t):
            body = _join(ref, '" t="inlineStr"><is><t xml:space="preserve">', _xml_escape(col))
            cells.append(_join(body, "</t></is></c>"))
            continue
        if pa.types.is_timestamp(t):
            secs = pc.cast(col.cast(pa.timestamp("s")), pa.int64()).to_numpy(zero_copy_only=False)
            val, style = pa.array(secs / 86400.0 + 25569.0), ' s="1"'
        elif pa.types.is_date(t):
            days = pc.cast(col, pa.int32()).to_numpy(zero_copy_only=False)
            val, style = pa.array(days + 25569.0), ' s="2"'
        elif pa.types.is_boolean(t):
            val, style = pc.cast(col, pa.int8()), ""
        else:
            val, style = col, ""
        val = pc.cast(val, pa.string())
        if col.null_count:
            val = _mask(val, col.is_valid().to_numpy(zero_copy_only=False))
        cells.append(_join(ref, f'"{style}><v>', val, "</v></c>"))
    rows = pc.binary_join_element_wise(*cells, "", null_handling="replace", null_replacement="")
    rows = _join('<row r="', rownum, '">', rows, "</row>")
    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="A1:{letters[-1]}{n + 1}"/><sheetData>'
        f'<row r="1">{header}</row>' + "".join(rows.to_pylist()) + "</sheetData></worksheet>"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        parts = dict(_XLSX_STATIC)
        parts["xl/worksheets/sheet1.xml"] = sheet
        for name in (
            "[Content_Types].xml",
            "_rels/.rels",
            "xl/workbook.xml",
            "xl/_rels/workbook.xml.rels",
            "xl/styles.xml",
            "xl/worksheets/sheet1.xml",
        ):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, parts[name].encode("utf-8"))
    path.write_bytes(buf.getvalue())


# --------------------------------------------------------------------------- per institution

_CANONICAL_COLS = (
    "ticket_id order_id event_id event_start sold_at price ticket_type channel status "
    "customer_id email phone first_name last_name street house_number postcode city country "
    "birth_date gender research_opt_out"
).split()
_DUTCH_HEADERS = (
    {  # variant 0: lower case
        "ticket_id": "ticketnummer",
        "order_id": "bestelnummer",
        "event_id": "voorstelling",
        "sold_at": "verkoopdatum",
        "price": "prijs",
        "channel": "kanaal",
        "email": "e-mail",
        "phone": "telefoonnummer",
        "first_name": "voornaam",
        "last_name": "achternaam",
        "street": "straat",
        "house_number": "huisnummer",
        "postcode": "postcode",
        "city": "woonplaats",
        "birth_date": "geboortedatum",
        "gender": "geslacht",
    },
    {  # variant 1: capitalised, other aliases
        "ticket_id": "Ticketnummer",
        "order_id": "Bestelnummer",
        "event_id": "Evenement",
        "event_start": "Event_start",
        "sold_at": "Verkoopdatum",
        "price": "Prijs",
        "channel": "Kanaal",
        "email": "Emailadres",
        "phone": "Telefoon",
        "first_name": "Voornaam",
        "last_name": "Achternaam",
        "street": "Straat",
        "house_number": "Huisnummer",
        "postcode": "Postcode",
        "city": "Woonplaats",
        "birth_date": "Geboortedatum",
        "gender": "Geslacht",
    },
)
_BINARY_COLS = (
    "ticket_id order_id event_id event_start sold_at price ticket_type channel status "
    "customer_id email first_name last_name postcode country birth_date research_opt_out"
).split()


def _institution(rng, i: int, inst: dict, o: dict, idx: np.ndarray, year_list, ps: dict):
    """Build events and the ticket rows of one institution (all years)."""
    kind, disc = int(inst["kind"][i]), int(inst["disc"][i])
    code, name = inst["code"][i], inst["name"][i]
    yrs = o["year"][idx]
    nt = o["nt"][idx]
    t_year = np.bincount(yrs, weights=nt, minlength=len(year_list))
    t_avg = max(1.0, t_year.mean())
    if kind == _PERF:
        cap_base = float(np.clip(np.sqrt(t_avg) * 4.0, 80, 1600))
    elif kind == _DAILY:
        cap_base = float(max(50.0, round(t_avg / 310 * 3.0, -1)))
    else:
        cap_base = 0.0
    lo, hi = _PRICE_RANGE[disc]
    inst_price = lo + (hi - lo) * inst["price_lvl"][i]
    ev_start, ev_cap, ev_hall, ev_year, ev_price = [], [], [], [], []
    o_event = np.empty(len(idx), dtype=np.int64)
    offset = 0
    for y, year in enumerate(year_list):
        sel = np.flatnonzero(yrs == y)
        start, cap, hall, weight = _make_events(rng, kind, disc, year, int(t_year[y]), cap_base)
        if len(sel):
            o_event[sel] = offset + rng.choice(len(start), len(sel), p=weight / weight.sum())
        if kind in (_PERF, _FEST):
            price = rng.uniform(0.8, 1.2, len(start)) * rng.uniform(lo, hi, len(start))
            price = 0.5 * price + 0.5 * inst_price
        else:
            price = np.full(len(start), inst_price * (1 + 0.03 * y))
        ev_start.append(start)
        ev_cap.append(cap)
        ev_hall.append(hall)
        ev_year.append(np.full(len(start), year))
        ev_price.append(np.round(price * 2) / 2)
        offset += len(start)
    ev_start = np.concatenate(ev_start)
    ev_cap = np.concatenate(ev_cap)
    ev_hall = np.concatenate(ev_hall)
    ev_year = np.concatenate(ev_year)
    ev_price = np.concatenate(ev_price)
    n_ev = len(ev_start)
    sold_per_ev = np.bincount(o_event, weights=nt, minlength=n_ev)
    capacity = np.maximum(np.round(ev_cap), sold_per_ev).astype(np.int64)
    capacity = np.where(capacity <= 0, 50, capacity)
    cap_known = rng.random(n_ev) >= 0.05

    # sales: lead time, channel
    person = o["person"][idx]
    anon = person < 0
    n_o = len(idx)
    o_start = ev_start[o_event]
    desk_p = {_DAILY: 0.3, _FILM: 0.3}.get(kind, 0.05)
    desk = anon | (rng.random(n_o) < desk_p)
    # pre-sales: a whole number of days ahead (< 180), at a daytime hour
    lead = np.minimum(np.floor(rng.exponential(_LEAD_MEAN_DAYS[disc], n_o)), 179).astype(np.int64)
    tod = rng.integers(7 * 3600, 24 * 3600, n_o)
    presale = (o_start // 86400 - lead) * 86400 + tod
    presale = np.minimum(presale, o_start - rng.integers(60, 3600, n_o))
    sold_at = np.where(desk, o_start, presale)
    channel = np.where(desk, 1, rng.choice(4, n_o, p=[0.68, 0.12, 0.08, 0.12]))
    # ticket and order numbers follow the sale order
    osort = np.lexsort((sold_at, yrs))
    o_seq = np.empty(n_o, dtype=np.int64)
    o_seq[osort] = np.arange(n_o)
    # expand to tickets, numbered in sale order
    t_o = np.repeat(osort, nt[osort])
    n_t = len(t_o)
    t_type = rng.choice(6, n_t, p=_TYPE_P[kind])
    tier = rng.choice([1.0, 0.85, 1.2], n_t, p=[0.6, 0.25, 0.15]) if kind == _PERF else 1.0
    price = ev_price[o_event[t_o]] * _TYPE_PRICE_FACTOR[t_type] * tier
    cents = np.clip(np.round(price * 2) * 50, 0, 15_000).astype(np.int64)
    oi = idx[t_o]  # global order index of each ticket
    status = o["status"][oi]
    tp = o["person"][oi]
    t_pair = o["pair"][oi]
    t_y = o["year"][oi]

    # truth
    sold = status == 0
    truth_years = {}
    opt = np.zeros(n_t, dtype=bool)
    opt[tp >= 0] = o["opt_out_person"][tp[tp >= 0]]
    counted = sold & (tp >= 0) & ~opt
    for y, year in enumerate(year_list):
        m = sold & (t_y == y)
        truth_years[str(year)] = {
            "tickets": int(m.sum()),
            "revenue": round(int(cents[m].sum()) / 100, 2),
            "n_persons": int(len(np.unique(tp[counted & (t_y == y)]))),
        }
    keyed = counted & (o["prof"][oi] != _CID_ONLY)
    sector_pairs = (t_y[keyed], tp[keyed])

    # identifier columns
    safe_p = pa.array(np.maximum(tp, 0))
    ident = tp >= 0

    def person_col(name: str, keep: np.ndarray) -> pa.Array:
        return _mask(pc.take(ps[name], safe_p), keep & ident)

    p_safe = np.maximum(t_pair, 0)
    cid_on = o["cid_on"][oi]
    email_on = o["email_on"][oi]
    phone_on = o["phone_on"][oi]
    birth_on = ident & o["p_birth"][p_safe]
    pc_on = ident & o["p_pc"][p_safe]
    gender_on = ident & o["p_gender"][p_safe]
    email = person_col("email", email_on)
    ev = o["email_var"][oi]
    email = pc.choose(
        pa.array(ev.astype(np.int8)),
        email,
        pc.utf8_upper(email),
        _join(" ", email, "  "),
        pc.utf8_capitalize(email),
    )
    p8 = pc.take(ps["phone8"], safe_p)
    phone = pc.choose(
        pa.array(o["phone_fmt"][oi].astype(np.int8)),
        _join("06", p8),
        _join("06-", p8),
        _join(
            "+31 6 ",
            pc.utf8_slice_codeunits(p8, 0, 4),
            " ",
            pc.utf8_slice_codeunits(p8, 4, 8),
        ),
        _join("00316", p8),
        _join("+316", p8),
    )
    phone = _mask(phone, phone_on & ident)
    birth_days = o["birth_person"][np.maximum(tp, 0)]
    cols = {
        "t_seq": np.arange(n_t),
        "o_seq": o_seq[t_o],
        "event": o_event[t_o],
        "event_start": o_start[t_o],
        "sold_at": sold_at[t_o],
        "cents": cents,
        "type": t_type,
        "channel": channel[t_o],
        "status": status,
        "cid": np.where(cid_on & ident, o["p_cid"][p_safe], -1),
        "email": email,
        "phone": phone,
        "first": person_col("first", np.ones(n_t, bool)),
        "last": person_col("last", np.ones(n_t, bool)),
        "street": person_col("street", pc_on),
        "house": person_col("house", pc_on),
        "pc_space": person_col("pc6_space", pc_on),
        "pc_tight": person_col("pc6_tight", pc_on),
        "city": person_col("city", pc_on),
        "country": person_col("country", np.ones(n_t, bool)),
        "birth": birth_days,
        "birth_on": birth_on,
        "gender": np.where(gender_on, o["gender_person"][np.maximum(tp, 0)], -1),
        "opt_out": opt,
        "year": t_y,
    }
    events = {
        "start": ev_start,
        "capacity": capacity,
        "cap_known": cap_known,
        "hall": ev_hall,
        "year": ev_year,
    }
    info = {"code": code, "name": name, "kind": kind, "disc": disc}
    return cols, events, info, truth_years, sector_pairs


def _event_ids(events: dict) -> list[str]:
    year = events["year"]
    seq = np.zeros(len(year), dtype=np.int64)
    for y in np.unique(year):
        m = year == y
        seq[m] = np.arange(1, m.sum() + 1)
    return [f"E{y}-{s:05d}" for y, s in zip(year.tolist(), seq.tolist(), strict=True)]


def _events_table(rng, events: dict, info: dict, ev_ids: list[str]) -> pa.Table:
    n = len(ev_ids)
    d = DISCIPLINES[info["disc"]]
    kind = info["kind"]
    ev_disc = np.full(n, d, dtype=object)
    if d == "theater":
        other = rng.random(n) < 0.15
        ev_disc[other] = rng.choice(["cabaret", "dans", "muziek", "jeugd"], other.sum())
    elif d == "muziek":
        other = rng.random(n) < 0.08
        ev_disc[other] = "overig"
    if kind == _DAILY:
        quarter = ((events["start"] // 86400) // 91) % len(_EXHIBITIONS)
        names = [f"Entree met tentoonstelling '{_EXHIBITIONS[q]}'" for q in quarter.tolist()]
        venue = [info["name"]] * n
    elif kind == _FEST:
        names = [f"{info['name']} dag {k + 1}" for k in range(n)]
        venue = [f"{info['name']}, festivalterrein"] * n
    else:
        titles = _TITLES.get(d, _TITLES["overig"])
        names = [titles[k] for k in rng.integers(0, len(titles), n).tolist()]
        if kind == _FILM:
            venue = [f"{info['name']}, zaal {h + 1}" for h in events["hall"].tolist()]
        else:
            halls = ("Grote Zaal", "Kleine Zaal")
            venue = [f"{info['name']}, {halls[h]}" for h in events["hall"].tolist()]
    cap = pa.array(events["capacity"], mask=~events["cap_known"])
    return pa.table(
        {
            "event_id": _str(ev_ids),
            "starts_at": _iso(events["start"]),
            "discipline": _str(ev_disc),
            "event_name": _str(names),
            "venue": _str(venue),
            "capacity": cap,
        }
    )


def _ticket_table(cols: dict, sel: np.ndarray, family: str, variant: int, ev_ids) -> pa.Table:
    def take(name):
        v = cols[name]
        return pc.take(v, pa.array(sel)) if isinstance(v, pa.Array) else v[sel]

    tseq, oseq = take("t_seq"), take("o_seq")
    ev = pc.take(_str(ev_ids), pa.array(take("event")))
    cid = take("cid")
    cid_known = cid >= 0
    birth, birth_on = take("birth"), take("birth_on")
    gender = take("gender")
    status = _pick(take("status"), _STATUSES)
    channel = _pick(take("channel"), _CHANNELS)
    opt = take("opt_out")
    if family == _CANONICAL:
        t = {
            "ticket_id": _join("T", pc.utf8_lpad(pc.cast(pa.array(tseq), pa.string()), 8, "0")),
            "order_id": _join("O", pc.utf8_lpad(pc.cast(pa.array(oseq), pa.string()), 8, "0")),
            "event_id": ev,
            "event_start": _iso(take("event_start")),
            "sold_at": _iso(take("sold_at")),
            "price": _money(take("cents"), "."),
            "ticket_type": _pick(take("type"), _TICKET_TYPES),
            "channel": channel,
            "status": status,
            "customer_id": _mask(
                _join("C", pc.utf8_lpad(pc.cast(pa.array(cid), pa.string()), 7, "0")), cid_known
            ),
            "email": take("email"),
            "phone": take("phone"),
            "first_name": take("first"),
            "last_name": take("last"),
            "street": take("street"),
            "house_number": take("house"),
            "postcode": take("pc_space"),
            "city": take("city"),
            "country": take("country"),
            "birth_date": _mask(_iso_date(birth), birth_on),
            "gender": _mask(_pick(np.maximum(gender, 0), ("v", "m", "x")), gender >= 0),
            "research_opt_out": _pick(opt.astype(np.int8), ("false", "true")),
        }
        return pa.table(t)
    if family == _DUTCH:
        t = {
            "ticket_id": pc.cast(pa.array(tseq + 20_000_001), pa.string()),
            "order_id": pc.cast(pa.array(oseq + 7_000_001), pa.string()),
            "event_id": ev,
            "event_start": _nl_datetime(take("event_start")),
            "sold_at": _nl_datetime(take("sold_at")),
            "price": _money(take("cents"), ","),
            "ticket_type": _pick(take("type"), _TICKET_TYPES_NL),
            "channel": channel,
            "status": status,
            "customer_id": _mask(pc.cast(pa.array(cid), pa.string()), cid_known),
            "email": take("email"),
            "phone": take("phone"),
            "first_name": take("first"),
            "last_name": take("last"),
            "street": take("street"),
            "house_number": take("house"),
            "postcode": take("pc_tight"),
            "city": take("city"),
            "country": take("country"),
            "birth_date": _mask(_nl_date(birth), birth_on),
            "gender": _mask(_pick(np.maximum(gender, 0), ("vrouw", "man", "x")), gender >= 0),
            "research_opt_out": _pick(opt.astype(np.int8), ("nee", "ja")),
        }
        hdr = _DUTCH_HEADERS[variant]
        return pa.table({hdr.get(k, k): v for k, v in t.items()})
    t = {
        "ticket_id": _join("TK", pc.utf8_lpad(pc.cast(pa.array(tseq), pa.string()), 9, "0")),
        "order_id": _join("ORD", pc.utf8_lpad(pc.cast(pa.array(oseq), pa.string()), 8, "0")),
        "event_id": ev,
        "event_start": pa.array(take("event_start") * 1_000_000, pa.int64()).cast(
            pa.timestamp("us")
        ),
        "sold_at": pa.array(take("sold_at") * 1_000_000, pa.int64()).cast(pa.timestamp("us")),
        "price": pa.array(take("cents") / 100.0, pa.float64()),
        "ticket_type": _pick(take("type"), _TICKET_TYPES),
        "channel": channel,
        "status": status,
        "customer_id": _mask(
            _join("KL-", pc.utf8_lpad(pc.cast(pa.array(cid), pa.string()), 6, "0")), cid_known
        ),
        "email": take("email"),
        "first_name": take("first"),
        "last_name": take("last"),
        "postcode": take("pc_space"),
        "country": take("country"),
        "birth_date": pa.array(birth.astype(np.int32), pa.int32(), mask=~birth_on).cast(
            pa.date32()
        ),
        "research_opt_out": pa.array(opt, pa.bool_()),
    }
    return pa.table(t)


# --------------------------------------------------------------------------- main entry


def generate_sector(
    home: pathlib.Path,
    *,
    institutions: int = 30,
    persons: int = 20_000,
    years: int = 3,
    seed: int = 42,
    end_year: int | None = None,
) -> dict:
    """Write a synthetic sector into ``home`` and return a summary.

    Writes ``institutions.csv``, ``reference/pc4.csv``, ``landing/<code>/`` deliveries
    and ``synthetic/truth.json``. Deterministic for a given seed and end_year.
    """
    for name, val in (("institutions", institutions), ("persons", persons), ("years", years)):
        if int(val) < 1:
            raise ValueError(f"{name} must be >= 1")
    home = pathlib.Path(home)
    end_year = int(end_year) if end_year is not None else dt.date.today().year
    year_list = list(range(end_year - years + 1, end_year + 1))
    ss = np.random.SeedSequence(seed)
    r_ref, r_inst, r_pers, r_ord, r_evt = (np.random.default_rng(s) for s in ss.spawn(5))

    ref = _make_reference(r_ref)
    inst = _make_institutions(r_inst, ref, institutions)
    pers = _make_persons(r_pers, ref, persons, end_year)
    o = _make_orders(r_ord, ref, inst, pers, years)
    o["opt_out_person"] = pers["opt_out"]
    o["birth_person"] = pers["birth"]
    o["gender_person"] = pers["gender"]
    ps = _person_strings(pers, ref)

    # binary family: XLSX for the smallest, Parquet for the larger institutions
    n_i = inst["n"]
    rows_iy = np.bincount(
        o["inst"] * years + o["year"], weights=o["nt"], minlength=n_i * years
    ).reshape(n_i, years)
    fmt = np.where(inst["family"] == _BINARY, "parquet", "csv").astype(object)
    binary = np.flatnonzero(inst["family"] == _BINARY)
    binary = binary[np.argsort(rows_iy[binary].sum(axis=1), kind="stable")]
    n_xlsx = max(1, len(binary) // 2) if len(binary) else 0
    for i in binary[:n_xlsx]:
        if rows_iy[i].max() <= _XLSX_MAX_ROWS:
            fmt[i] = "xlsx"

    home.mkdir(parents=True, exist_ok=True)
    (home / "reference").mkdir(exist_ok=True)
    (home / "synthetic").mkdir(exist_ok=True)
    landing = home / "landing"
    landing.mkdir(exist_ok=True)
    mun = _MUNICIPALITIES
    registry = pa.table(
        {
            "code": _str(inst["code"]),
            "name": _str(inst["name"]),
            "discipline": _str([DISCIPLINES[d] for d in inst["disc"]]),
            "pc4": _str([f"{ref['pc4'][a]:04d}" for a in inst["area"]]),
            "gemeente_code": _str([mun[m][0] for m in inst["muni"]]),
        }
    )
    with duckdb.connect() as con:
        _write_csv(con, registry, home / "institutions.csv", ",", "utf-8")
        _write_csv(con, _reference_table(ref), home / "reference" / "pc4.csv", ",", "utf-8")

        order = np.lexsort((o["year"], o["inst"]))
        bounds = np.searchsorted(o["inst"][order], np.arange(n_i + 1))
        truth_inst = {}
        sector_y, sector_p = [], []
        sector_tickets = np.zeros(years, dtype=np.int64)
        sector_cents = np.zeros(years, dtype=np.int64)
        n_rows = n_files = 0
        for i in range(n_i):
            idx = order[bounds[i] : bounds[i + 1]]
            cols, events, info, truth_years, (sy, sp) = _institution(
                r_evt, i, inst, o, idx, year_list, ps
            )
            code = info["code"]
            folder = landing / code
            folder.mkdir(exist_ok=True)
            for old in folder.glob(f"{code}_tickets_*"):
                if old.suffix in (".csv", ".parquet", ".xlsx"):
                    old.unlink()
            ev_ids = _event_ids(events)
            events_table = _events_table(r_evt, events, info, ev_ids)
            _write_csv(con, events_table, folder / f"{code}_events.csv", ",", "utf-8")
            n_files += 1
            family, variant = str(inst["family"][i]), int(inst["dutch_variant"][i])
            for y, year in enumerate(year_list):
                sel = np.flatnonzero(cols["year"] == y)
                if len(sel) == 0:
                    continue
                table = _ticket_table(cols, sel, family, variant, ev_ids)
                stem = folder / f"{code}_tickets_{year}"
                if family == _CANONICAL:
                    _write_csv(con, table, stem.with_suffix(".csv"), ",", "utf-8")
                elif family == _DUTCH:
                    _write_csv(con, table, stem.with_suffix(".csv"), ";", "cp1252")
                elif fmt[i] == "xlsx":
                    _write_xlsx(table, stem.with_suffix(".xlsx"))
                else:
                    pq.write_table(table, stem.with_suffix(".parquet"))
                n_rows += table.num_rows
                n_files += 1
            sold = cols["status"] == 0
            for y in range(years):
                m = sold & (cols["year"] == y)
                sector_tickets[y] += int(m.sum())
                sector_cents[y] += int(cols["cents"][m].sum())
            sector_y.append(sy)
            sector_p.append(sp)
            for v in truth_years.values():
                v["size_class"] = _size_class(v["tickets"])
            truth_inst[code] = {
                "discipline": DISCIPLINES[info["disc"]],
                "dialect": family if family != _BINARY else str(fmt[i]),
                "years": truth_years,
            }

    sy = np.concatenate(sector_y) if sector_y else np.zeros(0, np.int64)
    sp = np.concatenate(sector_p) if sector_p else np.zeros(0, np.int64)
    sector = {}
    for y, year in enumerate(year_list):
        sector[str(year)] = {
            "tickets": int(sector_tickets[y]),
            "revenue": round(int(sector_cents[y]) / 100, 2),
            "n_persons": int(len(np.unique(sp[sy == y]))),
        }
    truth = {
        "seed": seed,
        "years": year_list,
        "institutions": truth_inst,
        "sector": sector,
    }
    (home / "synthetic" / "truth.json").write_text(
        json.dumps(truth, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return {
        "institutions": n_i,
        "persons": persons,
        "tickets": int(n_rows),
        "deliveries": int(n_files),
        "years": year_list,
    }
