"""The privacy step's SQL (privacy/keyed_sql.py) against the Python reference.

HMAC chains and record keys computed by DuckDB with bound keys must equal
privacy/pseudonymise.py byte for byte; each SQL normalisation fast path must give what
privacy/normalise.py gives wherever it answers at all.
"""

import duckdb
import pytest
from conftest import TICKETS_WITH_PSEUDONYMS
from hypothesis import example, given, settings
from hypothesis import strategies as st

from privacy import keyed_sql
from privacy.normalise import (
    normalise_customer_id,
    normalise_email,
    normalise_name,
    normalise_phone,
    split_postcode,
)
from privacy.pseudonymise import chained_pseudonym, record_key

KEYS = st.binary(min_size=1, max_size=100)  # derived keys are 32 bytes; > 64 is hashed first
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)
# the alphabet that reaches the fast paths, with the characters that must keep Python in charge
IDENT = st.text(
    alphabet=st.sampled_from(
        list("abcxyzABZ019+-._@ ' ") + ["\t", "\u00a0", "\u200b", "é", "Ｊ", "\u202e", "\n", "ß"]
    ),
    max_size=30,
)


@pytest.fixture(scope="module")
def conn():
    c = duckdb.connect()
    yield c
    c.close()


def _one(conn, expr: str, value, params: dict | None = None):
    return conn.execute(
        f"select {expr} from (select $v::varchar as x)", {"v": value, **(params or {})}
    ).fetchall()[0][0]


@settings(max_examples=150, deadline=None)
@given(
    keys=st.lists(KEYS, min_size=1, max_size=3),
    kind=st.sampled_from(["email", "phone", "fallback", "customer:th_a"]),
    value=TEXT,
)
@example(keys=[b"k" * 32], kind="email", value="ann@example.nl")
def test_a_chained_hmac_in_sql_is_the_python_pseudonym(conn, keys, kind, value):
    params = keyed_sql.KeyParams()
    expr = params.chained_hmac_sql(keys, kind, "x")
    assert _one(conn, expr, value, params.values) == chained_pseudonym(keys, kind, value)


@settings(max_examples=50, deadline=None)
@given(
    keys=st.lists(KEYS, min_size=1, max_size=2),
    institution=st.sampled_from(["th_a", "mu_b"]),
    value=TEXT,
)
def test_the_customer_kind_can_come_from_a_column(conn, keys, institution, value):
    params = keyed_sql.KeyParams()
    expr = params.chained_hmac_sql(keys, "", "x", kind_sql=f"'customer:' || '{institution}'")
    assert _one(conn, expr, value, params.values) == chained_pseudonym(
        keys, f"customer:{institution}", value
    )


@settings(max_examples=100, deadline=None)
@given(key=KEYS, person=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_a_record_key_in_sql_is_the_python_record_key(conn, key, person):
    params = keyed_sql.KeyParams()
    expr = params.record_key_sql(key, "x")
    assert _one(conn, expr, person, params.values) == record_key(key, person)


def test_no_key_is_part_of_the_sql_text():
    key = bytes(range(32))
    params = keyed_sql.KeyParams()
    expr = params.chained_hmac_sql([key, key[::-1]], "email", "x") + params.record_key_sql(key, "x")
    pads = [p for k in (key, key[::-1]) for p in keyed_sql.hmac_pads(k)]
    for secret in [key, key[::-1], *pads]:
        assert secret.hex() not in expr.lower() and secret.hex().upper() not in expr
    assert set(params.values.values()) == set(pads)


def test_a_failing_keyed_statement_does_not_quote_the_value(conn):
    conn.execute("create or replace temp table bad as select 'anne.identifier@example.nl' as x")
    params = keyed_sql.KeyParams()
    expr = params.hmac_sql(b"k" * 32, "x")
    with pytest.raises(keyed_sql.KeyedStatementError) as caught:
        keyed_sql.execute_keyed(
            conn, f"select {expr}, cast(x as integer) from bad", params, "keying"
        )
    assert "anne.identifier" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# --- normalisation: where SQL answers, it answers what Python answers -----------------------


def _fast_path_agrees(conn, fast_sql, python, raw) -> None:
    """Where the SQL fast path answers (not NULL), its answer is Python's."""
    got = _one(conn, fast_sql("x"), raw)
    if got is not None:
        assert got == python(raw)


@settings(max_examples=400, deadline=None)
@given(IDENT)
@example("Ann@Example.NL")
@example("a.b-c+d@sub.example-x.nl")
@example("ann@example.test")
@example("ann@xn--bcher-kva.nl")
def test_the_email_fast_path_agrees_with_normalise_email(conn, raw):
    _fast_path_agrees(conn, keyed_sql.email_sql, normalise_email, raw)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789+- ()") + ["\t", "\u00a0"]), max_size=20))
@example("06-12345678")
@example("0031 6 1234 5678")
@example("+31 20 123 4567")
@example(" 0612345678 ")
@example("0912345678")
def test_the_phone_fast_path_agrees_with_normalise_phone(conn, raw):
    _fast_path_agrees(conn, keyed_sql.phone_sql, normalise_phone, raw)


@pytest.mark.parametrize("raw", ["06-12345678", "0612345678", "+31612345678", "0031 6 12345678",
                                 "020 123 4567", "+31 20-1234567"])  # fmt: skip
def test_the_phone_fast_path_takes_the_common_dutch_numbers(conn, raw):
    assert _one(conn, keyed_sql.phone_sql("x"), raw) == normalise_phone(raw) is not None


@settings(max_examples=400, deadline=None)
@given(IDENT)
@example("  De  Vries ")
@example("O'Brien")
@example("   ")
def test_the_plain_fast_paths_are_the_whole_answer_for_printable_ascii(conn, raw):
    if not _one(conn, keyed_sql.plain_sql("x"), raw):
        assert not raw.isascii() or any(not (" " <= c <= "~") for c in raw) or raw == ""
        return
    assert _one(conn, keyed_sql.name_sql("x"), raw) == normalise_name(raw)
    assert _one(conn, keyed_sql.pc6_sql("x"), raw) == split_postcode(raw)[1]
    assert _one(conn, keyed_sql.pc4_sql("x"), raw) == split_postcode(raw)[0]
    assert _one(conn, keyed_sql.customer_id_sql("x"), raw) == normalise_customer_id(raw)


@pytest.mark.parametrize(
    "raw", ["1011 AB", "1011ab", " 1011AB ", "1011", "0123 AB", "1011 A", "B-1000"]
)
def test_postcodes_in_sql(conn, raw):
    assert _one(conn, keyed_sql.pc6_sql("x"), raw) == split_postcode(raw)[1]
    assert _one(conn, keyed_sql.pc4_sql("x"), raw) == split_postcode(raw)[0]


# --- the whole privacy step: every stored pseudonym is the Python reference's ----------------

AWKWARD = [
    # ticket, customer, email, phone, last name, birth date, postcode
    ("A1", "C1", "Ann@Example.NL", "", "", "", "1011 AB"),
    ("A2", " C1 ", " ann@example.nl\u200b", "", "", "", "1011\u00a0ab"),
    ("A3", "ＣＵＳＴ７", "", "0031 6 1234 5678", "", "", "9999"),
    ("A4", "", "", "+44 20 7946 0958", "", "", "B-1000"),
    ("A5", "", "not an address", "06-1234", "Öztürk", "1980-05-06", "1234 AB"),
    ("A6", "", "", "", "  de   Vries ", "1970-01-02", "1011AB"),
    ("A7", "", "", "", "DE VRIES", "1970-01-02", " 1011 ab "),
    ("A8", "C9", "jan@bücher.de", "(020) 123 4567", "Straße", "1990-12-31", "2000\u2009XY"),
    ("A9", "", "a.b-c+d@sub.example-x.nl", "06 12 34 56 78", "", "", ""),
]


def test_the_step_stores_the_python_references_pseudonyms(home):
    from conftest import deliver, write_minimal_sector

    from ingest.intake import take_deliveries
    from privacy.keyring import open_keyring
    from privacy.normalise import fallback_identity
    from privacy.pseudonymise import customer_pseudonym, sector_pseudonym
    from privacy.step import pseudonymise_pending

    write_minimal_sector(home)
    header = ("ticket_id,order_id,event_id,event_start,sold_at,price,customer_id,email,phone,"
              "last_name,birth_date,postcode\n")  # fmt: skip
    body = "".join(
        f'{t},O{t},E1,2025-03-01 20:00,2025-02-01 10:00,12.50,"{c}","{e}","{p}","{n}",{b},"{pc}"\n'
        for t, c, e, p, n, b, pc in AWKWARD
    )
    deliver(home, "th_a", "awkward.csv", header + body)
    take_deliveries(home)
    pseudonymise_pending(home)
    ring = open_keyring(home)
    with duckdb.connect(str(home.warehouse), read_only=True) as wh:
        stored = {r[0]: r[1:] for r in wh.execute(
            f"select ticket_id, sector_pseudonym, customer_pseudonym, pc4 from {TICKETS_WITH_PSEUDONYMS}"
        ).fetchall()}  # fmt: skip
    assert len(stored) == len(AWKWARD)
    for t, c, e, p, n, b, pc in AWKWARD:
        email, phone = normalise_email(e or None), normalise_phone(p or None)
        fallback = fallback_identity(n or None, b or None, pc or None)
        expected = (
            sector_pseudonym(ring, "email", email) if email
            else sector_pseudonym(ring, "phone", phone) if phone
            else sector_pseudonym(ring, "fallback", fallback) if fallback
            else None
        )  # fmt: skip
        customer = normalise_customer_id(c or None)
        assert stored[t][0] == expected, t
        assert stored[t][1] == (customer_pseudonym(ring, "th_a", customer) if customer else None), t
        assert stored[t][2] == split_postcode(pc or None)[0], t
    # the awkward variants meet where the standard says they are one person
    assert stored["A1"][0] == stored["A2"][0] and stored["A1"][1] == stored["A2"][1]
    assert stored["A6"][0] == stored["A7"][0] is not None
