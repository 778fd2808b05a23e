"""Property-based tests (hypothesis) for normalisation and parsing.

Normalisation (privacy/normalise.py) decides who is the same person, so it must be a
function of the person, not of how a member's system typed them: idempotent, blind to case,
whitespace, Unicode composition (NFC/NFD), full-width forms and zero-width characters. Parsing
(ingest/typed.py) must read every decimal and date format of the standard back to the value
written. Examples are bounded so the file runs in seconds.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from decimal import Decimal
from functools import partial

import duckdb
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from ingest.standard import (
    CHANNELS,
    DATE_FORMATS,
    DISCIPLINE_ALIASES,
    GENDERS,
    STATUSES,
    TICKET_TYPES,
)
from ingest.typed import _case_map, _decimal, _decimal_full, _timestamp
from privacy.normalise import (
    fallback_identity,
    normalise_email,
    normalise_name,
    normalise_phone,
    split_postcode,
)

BOUNDED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
SPACES = [" ", "\t", "\u00a0", "\u2007", "\u202f", "\u3000"]


def fullwidth(text: str) -> str:
    """ASCII letters and digits as their full-width forms (NFKC maps them back)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


@st.composite
def disguise(draw, text: str) -> str:
    """The same text as another system might type it: case, spaces around, composition,
    full-width, a zero-width character inside."""
    out = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in text)
    if draw(st.booleans()):
        out = fullwidth(out)
    out = unicodedata.normalize(draw(st.sampled_from(["NFC", "NFD"])), out)
    if draw(st.booleans()) and len(out) > 1:
        i = draw(st.integers(1, len(out) - 1))
        out = out[:i] + draw(st.sampled_from(ZERO_WIDTH)) + out[i:]
    pad = st.text(st.sampled_from(SPACES), max_size=3)
    return draw(pad) + out + draw(pad)


LOCAL = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789éü"), min_size=1, max_size=12)
LABEL = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789"), min_size=1, max_size=10)
EMAIL = st.builds(lambda a, b, c, tld: f"{a}.{b}@{c}.{tld}", LOCAL, LOCAL, LABEL,
                  st.sampled_from(["nl", "com", "be", "org"]))  # fmt: skip


@BOUNDED
@given(st.one_of(EMAIL, EMAIL.flatmap(disguise), st.text(max_size=30)))
@example("Ａｄｍｉｎ@Example.NL")
@example("İstanbul@example.nl")
def test_email_normalisation_is_idempotent(value):
    once = normalise_email(value)
    if once is not None:
        assert normalise_email(once) == once


@BOUNDED
@given(st.data(), EMAIL)
def test_one_email_however_typed_is_one_person(data, email):
    canonical = normalise_email(email)
    assert canonical is not None
    assert normalise_email(data.draw(disguise(email))) == canonical


@BOUNDED
@given(st.text(max_size=30))
def test_name_and_postcode_normalisation_is_idempotent(value):
    name = normalise_name(value)
    if name is not None:
        assert normalise_name(name) == name
    pc4, pc6 = split_postcode(value)
    if pc6 is not None:
        assert split_postcode(pc6) == (pc4, pc6)
    elif pc4 is not None:
        assert split_postcode(pc4) == (pc4, None)


POSTCODE = st.tuples(st.integers(1000, 9999), st.text(st.sampled_from("ABEGHJKLMNPRTVWXZ"),
                                                     min_size=2, max_size=2))  # fmt: skip


@BOUNDED
@given(st.data(), POSTCODE)
def test_every_way_of_writing_a_postcode_gives_one_pc4_and_pc6(data, postcode):
    digits, letters = postcode
    sep = data.draw(st.sampled_from(["", " ", "  ", "\u00a0", "\t"]))
    typed = data.draw(disguise(f"{digits}{sep}{letters}"))
    assert split_postcode(typed) == (str(digits), f"{digits}{letters}")


@BOUNDED
@given(st.data(), st.integers(10_000_000, 59_999_999))  # 06-1.. to 06-5..: mobile
def test_a_dutch_mobile_number_in_any_format_is_one_e164(data, rest):
    digits = f"6{rest}"
    formats = [
        f"0{digits}", f"06-{rest}", f"06 {str(rest)[:4]} {str(rest)[4:]}", f"+31{digits}",
        f"+31 6 {rest}", f"0031{digits}", f"+31 (0)6 {rest}", f"(06) {rest}",
    ]  # fmt: skip
    typed = data.draw(st.sampled_from(formats))
    if data.draw(st.booleans()):
        typed = fullwidth(typed)
    pad = data.draw(st.sampled_from(["", " ", "\u00a0", "\u200b"]))
    assert normalise_phone(pad + typed + pad) == f"+31{digits}"


PHONE_TEXT = st.text(st.sampled_from("0123456789+-() \u00a0"), max_size=16)


@BOUNDED
@given(st.one_of(PHONE_TEXT, st.text(max_size=20)))
@example("+32 2 123 45 67")
@example("020-1234567")
def test_phone_normalisation_is_idempotent(value):
    once = normalise_phone(value)
    if once is not None:
        assert normalise_phone(once) == once


@BOUNDED
@given(st.data(), st.text(st.sampled_from("abcdeéëïöüßçñ '-"), min_size=2, max_size=15), POSTCODE,
       st.dates(dt.date(1920, 1, 1), dt.date(2015, 12, 31)))  # fmt: skip
def test_the_fallback_key_ignores_how_name_and_postcode_are_typed(data, name, postcode, born):
    assume(name.strip(" '-"))
    digits, letters = postcode
    base = fallback_identity(name, born.isoformat(), f"{digits} {letters}")
    assume(base is not None)
    typed_name = unicodedata.normalize(data.draw(st.sampled_from(["NFC", "NFD"])), name.upper())
    typed_postcode = data.draw(disguise(f"{digits}{letters}"))
    assert fallback_identity(typed_name, born.isoformat(), typed_postcode) == base


# --- parsing --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def duck():
    conn = duckdb.connect()
    yield conn
    conn.close()


def _parse(conn, expression_of, text: str):
    return conn.execute(f"select {expression_of('v')} from (select ?::varchar as v)", [text]).fetchall()[0][0]  # fmt: skip


CODE_MAPS = {"ticket_type": TICKET_TYPES, "channel": CHANNELS, "status": STATUSES,
             "gender": GENDERS, "discipline": DISCIPLINE_ALIASES}  # fmt: skip


@BOUNDED
@given(st.data(), st.sampled_from(sorted(CODE_MAPS)))
def test_a_code_in_any_case_maps_to_its_standard_value_and_any_other_text_to_the_default(
    duck, data, name
):
    """The code columns (ingest/typed.py, ``_case_map``): every spelling the standard knows, in
    any mix of upper and lower case, gives its value; any other text the default; NULL stays
    NULL."""
    mapping = CODE_MAPS[name]
    key = data.draw(st.sampled_from(sorted(mapping)))
    cased = "".join(ch.upper() if data.draw(st.booleans()) else ch for ch in key)
    expression = partial(_case_map, mapping=mapping, default="'other'")
    assert _parse(duck, expression, cased) == mapping[key], cased
    other = data.draw(st.text(max_size=12).filter(lambda t: t.lower() not in mapping))
    assert _parse(duck, expression, other) == "other", other
    assert _parse(duck, expression, None) is None


AMOUNT = st.decimals(min_value=Decimal("0"), max_value=Decimal("99999.99"), places=2)


def _grouped(whole: int, sep: str) -> str:
    return f"{whole:,}".replace(",", sep)


@BOUNDED
@given(st.data(), AMOUNT)
def test_a_price_in_any_accepted_notation_parses_to_its_value(duck, data, amount):
    whole, cents = divmod(int(amount * 100), 100)
    notations = [
        f"{whole}.{cents:02d}", f"{whole},{cents:02d}",              # point or comma
        f"{_grouped(whole, '.')},{cents:02d}",                     # 1.234,50
        f"{_grouped(whole, ',')}.{cents:02d}",                     # 1,234.50
        f"€ {whole},{cents:02d}", f"EUR {whole}.{cents:02d}", f"{whole},{cents:02d} €",
    ]  # fmt: skip
    text = data.draw(st.sampled_from(notations))
    assert _parse(duck, _decimal, text) == amount, text
    # and in a file that writes a decimal point (a ,-delimited CSV)
    assert _parse(duck, partial(_decimal, decimal_point=True), text) == amount, text


@BOUNDED
@given(st.text(alphabet="0123456789.,-+€EURe \t", max_size=16))
@example("12,50")
@example("1.234")
@example("8.125")
@example("1,50")
@example("-3,5")
@example("123456789012,34")
def test_the_plain_price_shortcut_reads_every_text_as_the_full_parse_does(duck, text):
    """_decimal decides plain prices (12.50, 12,50, 12) by one match and sends the rest to the
    full parse: the shortcut must never read a text differently, in a file with a decimal
    point or a decimal comma."""
    for point in (False, True):
        fast = _parse(duck, partial(_decimal, decimal_point=point), text)
        assert fast == _parse(duck, partial(_decimal_full, decimal_point=point), text), (
            text,
            point,
        )


@pytest.mark.parametrize(
    ("text", "comma_file", "point_file"),
    [
        ("8.125", Decimal("8125"), Decimal("8.13")),  # one point: a decimal in a ,-file
        ("1.250", Decimal("1250"), Decimal("1.25")),
        ("1.234.567", Decimal("1234567"), Decimal("1234567")),  # two points: thousands
        ("1.234,50", Decimal("1234.50"), Decimal("1234.50")),
        ("1,234.50", Decimal("1234.50"), Decimal("1234.50")),
        ("12,50", Decimal("12.50"), Decimal("12.50")),  # one or two digits: a decimal comma
        ("1,234", Decimal("1.23"), Decimal("1234")),  # a comma file's decimal; else thousands
        ("€ 8.125", Decimal("8125"), Decimal("8.13")),
        ("0,999", Decimal("1.00"), Decimal("1.00")),  # no thousands group after a lone 0
        ("0.500", Decimal("0.50"), Decimal("0.50")),
        ("+1.234", Decimal("1234"), Decimal("1.23")),  # a plus sign changes nothing
        ("+12,50", Decimal("12.50"), Decimal("12.50")),
        ("12,50 eur", Decimal("12.50"), Decimal("12.50")),
    ],
)
def test_a_point_is_a_decimal_point_in_a_file_that_writes_one(duck, text, comma_file, point_file):
    """delivery-standard.md: ;-files from Dutch Excel use a decimal comma, so there a point
    groups thousands; a CSV delimited by commas or tabs writes decimals with a point."""
    assert _parse(duck, _decimal, text) == comma_file
    assert _parse(duck, partial(_decimal, decimal_point=True), text) == point_file


@pytest.mark.parametrize(
    ("text", "amsterdam"),
    [
        ("2025-03-01T19:00:00Z", dt.datetime(2025, 3, 1, 20, 0)),  # winter: UTC+1
        ("2025-07-01T19:00:00+02:00", dt.datetime(2025, 7, 1, 19, 0)),  # summer: UTC+2
        ("2025-07-01T17:00:00.250+0000", dt.datetime(2025, 7, 1, 19, 0, 0, 250000)),
        ("2025-07-01 12:00-05:00", dt.datetime(2025, 7, 1, 19, 0)),
        ("2025-03-01 19:00:00+00", dt.datetime(2025, 3, 1, 20, 0)),  # a Parquet zoned timestamp
        ("2025-03-30T01:30:00Z", dt.datetime(2025, 3, 30, 3, 30)),  # the night clocks go forward
        ("2025-03-01T19:00:00", dt.datetime(2025, 3, 1, 19, 0)),  # no offset: Amsterdam already
        ("2025-03-01T19:00:00+25:00", None),
        ("2025-03-01T19:00:00+14:45", None),  # offsets run from -14:00 to +14:00
        ("2025-02-30T10:00:00Z", None),  # no 30 February (not 2 March)
        ("2025-03-01T19:00:00.1234567+01:00", dt.datetime(2025, 3, 1, 19, 0, 0, 123456)),
        ("2025-10-26T00:30:00Z", dt.datetime(2025, 10, 26, 2, 30)),  # clocks go back: 02:30
        ("2025-10-26T01:30:00Z", dt.datetime(2025, 10, 26, 2, 30)),  # ... twice
    ],
)
def test_an_iso_time_with_an_offset_is_the_moment_it_names_in_amsterdam(duck, text, amsterdam):
    """delivery-standard.md: dates in ISO 8601, times in Europe/Amsterdam. A value with an
    offset or Z (web shops' exports, Parquet TIMESTAMP WITH TIME ZONE) names a moment: it is
    kept as Amsterdam's time of that moment, not rejected as unparseable."""
    assert _parse(duck, _timestamp, text) == amsterdam


MOMENT = st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2035, 12, 31)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
)


@BOUNDED
@given(st.data(), MOMENT)
def test_a_date_in_any_format_of_the_standard_round_trips(duck, data, moment):
    fmt = data.draw(st.sampled_from(DATE_FORMATS))
    text = moment.strftime(fmt)
    kept = {"%S": 0, "%M": 0, "%H": 0, "%f": 0}
    expected = moment.replace(
        microsecond=moment.microsecond if "%f" in fmt else kept["%f"],
        second=moment.second if "%S" in fmt else kept["%S"],
        minute=moment.minute if "%M" in fmt else kept["%M"],
        hour=moment.hour if "%H" in fmt else kept["%H"],
    )
    assert _parse(duck, _timestamp, text) == expected, (fmt, text)
    # the column's most common format tried first never changes what a value means
    first = data.draw(st.sampled_from(DATE_FORMATS))
    assert _parse(duck, lambda e: _timestamp(e, first), text) == expected, (fmt, first, text)
