"""Keyed pseudonyms, the keyring's chain of versions, and key rotation of the warehouse."""

import json

import duckdb
import pytest
from conftest import TICKETS_WITH_PSEUDONYMS, deliver, heads_out_of_step, write_minimal_sector
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.intake import take_deliveries
from privacy.keyring import Keyring, activate_pending, open_keyring, pending_keyring
from privacy.pseudonymise import (
    chained_pseudonym,
    email_map,
    phone_map,
    pseudonym,
    rekey,
    sector_pseudonym,
)
from privacy.rotation import rotate_keys
from privacy.step import pseudonymise_pending
from publieksdata.settings import PublieksdataError

HEADER = (
    "ticket_id,order_id,event_id,event_start,sold_at,price,customer_id,email,phone,"
    "last_name,birth_date,postcode,research_opt_out\n"
)
WHEN = "2025-03-01 20:00,2025-02-01 10:00,12.50"


def row(ticket, customer="", email="", phone="", last="", born="", pc="", opt_out="false"):
    return f"{ticket},O{ticket},E1,{WHEN},{customer},{email},{phone},{last},{born},{pc},{opt_out}\n"


# ann: e-mail and a customer number, some rows with only one of them; bob: phone and customer
# number; cas: customer number only; dirk: the fallback key; eve objected (research_opt_out)
TH_A = HEADER + "".join([
    row("T1", customer="C1", email="ann@example.nl"),
    row("T2", customer="C1"),
    row("T3", email="ann@example.nl"),
    row("T4", customer="C2", phone="06-11112222"),
    row("T5", customer="C2"),
    row("T6", customer="C3"),
    row("T7", last="Jansen", born="1970-01-02", pc="1011 AB"),
    row("T8", email="eve@example.nl", opt_out="true"),
    row("T9"),
])  # fmt: skip
MU_B = HEADER + row("M1", customer="M9", email=" ANN@Example.NL ") + row("M2", customer="M9")


def load(home, institution, name, content):
    deliver(home, institution, name, content)
    take_deliveries(home)
    pseudonymise_pending(home)


def tickets(home) -> dict[tuple[str, str], tuple]:
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        rows = conn.execute(
            "select institution_code, ticket_id, sector_pseudonym, customer_pseudonym, key_id "
            f"from {TICKETS_WITH_PSEUDONYMS}"
        ).fetchall()
    finally:
        conn.close()
    return {(r[0], r[1]): r[2:] for r in rows}


def persons(home) -> set[frozenset]:
    """Tickets grouped into persons as the dbt models resolve them (int_tickets_resolved)."""
    rows = tickets(home)
    links: dict[tuple[str, str], str] = {}
    for (inst, _), (sector, customer, _) in rows.items():
        if sector and customer:
            key = (inst, customer)
            links[key] = min(links.get(key, sector), sector)
    groups: dict[str, set] = {}
    for (inst, ticket), (sector, customer, _) in rows.items():
        person = sector or links.get((inst, customer)) or customer
        if person:
            groups.setdefault(person, set()).add((inst, ticket))
    return {frozenset(g) for g in groups.values()}


def make_sector(home):
    """Two members, the persons above, pseudonymised into the warehouse (no dbt)."""
    write_minimal_sector(home)
    load(home, "th_a", "a.csv", TH_A)
    load(home, "mu_b", "b.csv", MU_B)
    return home


@pytest.fixture
def sector(home):
    return make_sector(home)


def test_the_scenario_resolves_persons_as_the_standard_says(sector):
    groups = persons(sector)
    ann = frozenset({("th_a", "T1"), ("th_a", "T2"), ("th_a", "T3"), ("mu_b", "M1"),
                     ("mu_b", "M2")})  # fmt: skip
    assert ann in groups
    assert frozenset({("th_a", "T4"), ("th_a", "T5")}) in groups
    assert len(groups) == 4  # ann, bob, cas, dirk; eve and T9 are anonymous
    rows = tickets(sector)
    assert rows[("th_a", "T8")][:2] == (None, None)


def test_rotation_rekeys_every_pseudonym_and_keeps_every_link(sector):
    before_rows, before_persons = tickets(sector), persons(sector)
    old = open_keyring(sector)
    outcome = rotate_keys(sector)
    new = open_keyring(sector)
    assert (outcome.old_key_id, outcome.new_key_id) == (old.key_id, new.key_id)
    assert new.versions == 2 and new.key_id != old.key_id
    after_rows = tickets(sector)
    assert persons(sector) == before_persons
    old_pseudonyms = {p for r in before_rows.values() for p in r[:2] if p}
    new_pseudonyms = {p for r in after_rows.values() for p in r[:2] if p}
    assert len(old_pseudonyms) == len(new_pseudonyms) and not old_pseudonyms & new_pseudonyms
    assert {r[2] for r in after_rows.values()} == {new.key_id}
    # the new pseudonym is the old one keyed with the new version: chained, no raw data needed
    t1_old, t1_new = before_rows[("th_a", "T1")][0], after_rows[("th_a", "T1")][0]
    assert t1_new == rekey(new.chain("sector")[-1], t1_old)
    conn = duckdb.connect(str(sector.warehouse), read_only=True)
    assert [
        r[0] for r in conn.execute("select key_id from meta.keyring order by since").fetchall()
    ] == [
        old.key_id,
        new.key_id,
    ]
    conn.close()


def heads(home) -> dict[tuple[str, str], tuple]:
    """Each ticket's (sector_head, customer_head), and the record keys' heads by person key."""
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        rows = conn.execute(
            "select institution_code, ticket_id, sector_head, customer_head from pseudo.tickets"
        ).fetchall()
        keys = dict(conn.execute("select person_key, person_head from pseudo.person_record_keys")
                    .fetchall())  # fmt: skip
        assert heads_out_of_step(conn) == 0
    finally:
        conn.close()
    return {(r[0], r[1]): r[2:] for r in rows}, keys


@pytest.mark.parametrize("rotated", [False, True])
def test_each_pseudonym_has_its_head_beside_it(sector, rotated):
    """dbt reads persons by the first 128 bits of their pseudonyms (pseudonym_head), written by
    the privacy step and moved by key rotation; a ticket without a pseudonym has no head."""
    if rotated:
        rotate_keys(sector)
    per_ticket, per_key = heads(sector)
    for ticket, (sector_p, customer_p, _) in tickets(sector).items():
        expected = tuple(p and int(p[:32], 16) for p in (sector_p, customer_p))
        assert per_ticket[ticket] == expected
    assert per_ticket[("th_a", "T8")] == (None, None)  # eve objected
    assert per_ticket[("th_a", "T1")][0] == per_ticket[("mu_b", "M1")][0]  # ann, twice
    assert per_key and all(head == int(key[:32], 16) for key, head in per_key.items())


def record_keys(home) -> dict[str, float]:
    """pseudo.person_record_keys: person key -> record key (the cell-key perturbation)."""
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        rows = conn.execute("select person_key, record_key from pseudo.person_record_keys")
        return dict(rows.fetchall())
    finally:
        conn.close()


def record_key_per_ticket(home) -> dict[tuple[str, str], tuple]:
    """Each ticket's record keys, of its sector and of its customer pseudonym (None: no key)."""
    keys = record_keys(home)
    return {t: tuple(p and keys.get(p) for p in r[:2]) for t, r in tickets(home).items()}


def cell_key(keys) -> float:
    """A cell's key as macros/perturbation.sql computes it: the fractional part of the sum."""
    total = sum(keys)
    return total - int(total)


def test_every_pseudonym_has_a_record_key(sector):
    """The privacy step writes a record key for every person key it brings in (a person without
    one would add 0 to every cell key; dbt's assert_every_person_has_a_record_key blocks it)."""
    pseudonyms = {p for r in tickets(sector).values() for p in r[:2] if p}
    keys = record_keys(sector)
    assert pseudonyms and set(keys) == pseudonyms
    assert all(0 <= k < 1 and (k * 2**24).is_integer() for k in keys.values())


def test_rotation_keeps_each_persons_record_key(sector):
    """Record keys move to the new pseudonyms unchanged: the same persons, the same cell key and
    so the same deviation before and after `keys rotate` (docs/metrics.md)."""
    before = record_key_per_ticket(sector)
    rows = tickets(sector)
    assert all((p is None) == (k is None) for t, keys in before.items()
               for p, k in zip(rows[t][:2], keys, strict=True))  # fmt: skip
    th_a_before = cell_key({k for (inst, _), (k, _) in before.items() if inst == "th_a" and k})
    rotate_keys(sector)
    after = record_key_per_ticket(sector)
    assert after == before
    th_a_after = cell_key({k for (inst, _), (k, _) in after.items() if inst == "th_a" and k})
    assert th_a_after == th_a_before
    # keyed by the new pseudonyms only, one per pseudonym; none left under an old one
    pseudonyms = {p for r in tickets(sector).values() for p in r[:2] if p}
    assert set(record_keys(sector)) == pseudonyms


def test_a_delivery_after_rotations_links_to_the_persons_history(sector):
    rotate_keys(sector)
    rotate_keys(sector)
    assert open_keyring(sector).versions == 3
    later = (
        HEADER
        + row("T20", email=" Ann@EXAMPLE.nl")
        + row("T21", customer="C2")
        + row("T22", last="JANSEN", born="1970-01-02", pc="1011ab")
    )
    load(sector, "th_a", "later.csv", later)
    load(sector, "mu_b", "later_b.csv", HEADER + row("M3", phone="+31 6 1111 2222"))
    rows = tickets(sector)
    assert rows[("th_a", "T20")][0] == rows[("th_a", "T1")][0] == rows[("mu_b", "M1")][0]
    assert rows[("th_a", "T21")][1] == rows[("th_a", "T4")][1]
    assert rows[("th_a", "T22")][0] == rows[("th_a", "T7")][0]
    assert rows[("mu_b", "M3")][0] == rows[("th_a", "T4")][0]
    assert len(persons(sector)) == 4


def test_an_interrupted_rotation_is_refused_until_it_is_finished(sector):
    import privacy.rotation

    def crash(home):
        raise RuntimeError("power cut")

    before = persons(sector)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(privacy.rotation, "activate_pending", crash)
        with pytest.raises(RuntimeError):
            rotate_keys(sector)
    # the warehouse is re-keyed, the keyring not yet switched: no delivery may mix the two
    deliver(sector, "th_a", "mid.csv", HEADER + row("T30", email="ann@example.nl"))
    take_deliveries(sector)
    with pytest.raises(PublieksdataError, match="keys rotate"):
        pseudonymise_pending(sector)
    outcome = rotate_keys(sector)
    assert outcome.resumed
    pseudonymise_pending(sector)
    rows = tickets(sector)
    assert rows[("th_a", "T30")][0] == rows[("th_a", "T1")][0]
    assert len(persons(sector)) == len(before)


def test_a_pending_version_left_before_the_rekey_is_used_by_the_next_rotation(sector):
    pending = pending_keyring(sector, create=True)
    outcome = rotate_keys(sector)
    assert outcome.new_key_id == pending.key_id and not outcome.resumed
    assert open_keyring(sector).fingerprint == pending.fingerprint


def test_rotation_keeps_file_and_record_keys_and_stores_no_secret(home):
    before = open_keyring(home)
    pending_keyring(home, create=True)
    after = activate_pending(home)
    assert after.derive("file") == before.derive("file")  # sealed files stay readable
    assert after.derive("record") == before.derive("record")
    assert after.derive("sector") != before.derive("sector")
    assert after.chain("sector")[0] == before.derive("sector")
    doc = json.loads((home.keys / "keyring.json").read_text())
    assert doc["chain"] == [before.key_id, after.key_id] and doc["pending"] is None
    for entry in doc["keys"].values():
        assert set(entry) == {"created", "fingerprint", "wrapped"}


def test_a_chain_of_one_version_is_the_plain_pseudonym():
    """Warehouses keyed before rotation existed keep their pseudonyms."""
    ring = Keyring("k1", "f1", b"s" * 32)
    assert sector_pseudonym(ring, "email", "a@b.nl") == pseudonym(
        ring.derive("sector"), "email", "a@b.nl"
    )


# --- property-based: normalisation variants, keys ---------------------------------------------

LOCAL = st.from_regex(r"[a-z][a-z0-9]{0,8}([._-][a-z0-9]{1,5}){0,2}", fullmatch=True)
DOMAIN = st.sampled_from(["example.nl", "voorbeeld.org", "theater-a.nl", "mail.example.com"])
SECRET = st.binary(min_size=32, max_size=32)


def _fullwidth(c: str) -> str:
    """The full-width form of an ASCII letter or digit: NFKC maps it back."""
    return chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c


@st.composite
def email_variant(draw, canonical: str) -> str:
    out = []
    for c in canonical:
        form = draw(st.sampled_from(["same", "upper", "fullwidth"]))
        out.append(c.upper() if form == "upper" else _fullwidth(c) if form == "fullwidth" else c)
    pad = st.text(" \t\u00a0", max_size=3)
    return draw(pad) + "".join(out) + draw(pad)


def two_version_ring(a: bytes, b: bytes) -> Keyring:
    return Keyring("k2", "f2", b, (a,))


@settings(max_examples=60, deadline=None)
@given(local=LOCAL, domain=DOMAIN, secrets=st.tuples(SECRET, SECRET), data=st.data())
def test_case_space_and_width_variants_of_an_email_give_one_pseudonym(local, domain, secrets, data):
    canonical = f"{local}@{domain}"
    variants = [data.draw(email_variant(canonical)) for _ in range(4)]
    ring = two_version_ring(*secrets)
    table, unparseable = email_map(ring, [canonical, *variants])
    assert unparseable == 0
    assert len(set(table.column("pseudonym").to_pylist())) == 1


def phone_formats(d: str) -> list[str]:
    """One Dutch mobile number (06 + 8 digits) as people and ticketing systems write it."""
    pairs = " ".join(d[i : i + 2] for i in range(0, 8, 2))
    return [f"06-{d}", f"06 {pairs}", f"+31 6 {d[:4]} {d[4:]}", f"00316{d}", f"+316{d}",
            f"(06) {d[:4]}-{d[4:]}", f" 06{d} ", f"0031 6 {d}", f"＋３１６{d}"]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(digits=st.integers(10_000_000, 59_999_999), secret=SECRET)  # 061-065: mobile
def test_format_variants_of_a_dutch_mobile_number_give_one_pseudonym(digits, secret):
    table, unparseable = phone_map(Keyring("k", "f", secret), phone_formats(str(digits)))
    assert unparseable == 0
    assert len(set(table.column("pseudonym").to_pylist())) == 1


@settings(max_examples=60, deadline=None)
@given(local=LOCAL, domain=DOMAIN, a=SECRET, b=SECRET)
def test_a_different_key_gives_a_different_pseudonym(local, domain, a, b):
    if a == b:
        return
    email = f"{local}@{domain}"
    assert sector_pseudonym(Keyring("a", "fa", a), "email", email) != sector_pseudonym(
        Keyring("b", "fb", b), "email", email
    )
    # also after a rotation: a chain that differs in any version gives other pseudonyms
    assert sector_pseudonym(two_version_ring(a, b), "email", email) != sector_pseudonym(
        two_version_ring(b, a), "email", email
    )


@settings(max_examples=60, deadline=None)
@given(value=st.text(min_size=1, max_size=40), keys=st.lists(SECRET, min_size=1, max_size=4))
def test_a_chain_is_the_first_pseudonym_rekeyed_version_by_version(value, keys):
    expected = pseudonym(keys[0], "email", value)
    for key in keys[1:]:
        expected = rekey(key, expected)
    assert chained_pseudonym(keys, "email", value) == expected


def test_unparseable_identifiers_are_counted_per_delivery(home):
    """Distinct unparseable e-mail addresses and phone numbers per delivery, two deliveries in
    one privacy group; a value that only the Python rules parse counts as parseable, a row
    that objected to research is not looked at."""
    write_minimal_sector(home)
    deliver(home, "th_a", "a.csv", HEADER + "".join([
        row("T1", email="not-an-email"),
        row("T2", email="not-an-email", phone="12"),
        row("T3", email="ann@example.nl ", phone="(020) 555 1234"),  # Python's answers
        row("T4", email="also-not-one", opt_out="true"),
    ]))  # fmt: skip
    deliver(home, "mu_b", "b.csv", HEADER + "".join([
        row("M1", email="not-an-email", phone="12"),
        row("M2", email="bob@example.nl", phone="0612345678"),
        row("M3", email="bob@", phone="12"),
    ]))  # fmt: skip
    take_deliveries(home)
    pseudonymise_pending(home)
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        soft = {name: json.loads(problems) for name, problems in conn.execute(
            "select file_name, soft_problems from intake.deliveries").fetchall()}  # fmt: skip
        [mapped] = conn.execute(
            "select count(sector_head) from pseudo.tickets where ticket_id = 'T3'"
        ).fetchone()
    finally:
        conn.close()
    assert mapped == 1
    counts = {name: (s.get("email_unparseable", 0), s.get("phone_unparseable", 0))
              for name, s in soft.items()}  # fmt: skip
    assert counts == {"a.csv": (1, 1), "b.csv": (2, 1)}
