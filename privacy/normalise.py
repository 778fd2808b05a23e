"""Normalisation of direct identifiers before they are keyed (delivery-standard.md, "Persons").

Each function takes one raw value and returns the canonical form, or None when
the value does not parse (a soft problem: treated as missing). Nothing here
logs or raises with the value in the message.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email

_SPACES = re.compile(r"\s+")

# Fast paths. Nearly every identifier in a delivery has one plain shape; for those the answer
# is known without the full parsers (email-validator and phonenumbers cost ~150 us a value,
# which at national scale is minutes per night). A fast path only ever *accepts*, and only
# values the full parser accepts with the same result (tests/test_normalise.py proves this
# with hypothesis); anything else takes the full path.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_EMAIL = re.compile(
    rf"(?=.{{6,254}}$)(?=[^@]{{1,64}}@)[a-z0-9]+(?:[._+-][a-z0-9]+)*@(?:{_LABEL}\.)+[a-z]{{2,24}}"
)
_SPECIAL_USE_TLDS = frozenset(("arpa", "invalid", "local", "localhost", "onion", "test"))
_NL_NUMBER = re.compile(r"(?:\+31|0)([1-9][0-9]{8})")
_PHONE_SEPARATORS = re.compile(r"[\s-]+")
_NL_META = phonenumbers.PhoneMetadata.metadata_for_region("NL")
_NL_VALID = [
    re.compile(desc.national_number_pattern)
    for desc in (_NL_META.mobile, _NL_META.fixed_line)
    if desc is not None and desc.national_number_pattern and 9 in desc.possible_length
]
_NL_GENERAL = re.compile(_NL_META.general_desc.national_number_pattern)


def _plain_email(text: str) -> bool:
    """An ASCII address of the common shape that email-validator certainly accepts."""
    if not _PLAIN_EMAIL.fullmatch(text):
        return False
    domain = text.rsplit("@", 1)[1]
    return (
        len(domain) <= 253
        and "--" not in domain  # xn-- and other R-LDH labels: the full check decides
        and domain.rsplit(".", 1)[1] not in _SPECIAL_USE_TLDS
    )


def _plain_dutch_phone(text: str) -> str | None:
    """E.164 of a Dutch mobile or fixed-line number written plainly (06-12345678, +31 20 ...)."""
    m = _NL_NUMBER.fullmatch(_PHONE_SEPARATORS.sub("", text))
    if not m:
        return None
    national = m.group(1)
    if _NL_GENERAL.fullmatch(national) and any(p.fullmatch(national) for p in _NL_VALID):
        return "+31" + national
    return None


_PC6 = re.compile(r"^([1-9][0-9]{3})\s?([A-Z]{2})$")
_PC4 = re.compile(r"^([1-9][0-9]{3})$")


def _clean(value: object) -> str | None:
    """NFKC, invisible format characters removed, trimmed.

    Format characters (Unicode category Cf: zero-width space and joiners, the byte-order mark,
    soft hyphen, bidirectional overrides such as U+202E) print as nothing, so two values that
    differ only in them look the same to every person and must be the same identifier.
    """
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", str(value))
    if not text.isascii():
        # removed, then composed again: "e" + zero-width space + combining acute is "é"
        text = "".join(c for c in text if unicodedata.category(c) != "Cf")
        text = unicodedata.normalize("NFKC", text)
    text = text.strip()
    return text or None


def normalise_email(value: object) -> str | None:
    """NFKC, trimmed, lower-cased; None when the syntax is not an e-mail address."""
    text = _clean(value)
    if text is None:
        return None
    text = _SPACES.sub("", text).lower()
    if _plain_email(text):
        return text
    return _validated_email(text)


def _validated_email(text: str) -> str | None:
    """The full syntax check (email-validator), for every address the fast path leaves."""
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return None
    return text


def normalise_phone(value: object, default_region: str = "NL") -> str | None:
    """E.164 (+31612345678); Dutch numbers without a country code get +31."""
    text = _clean(value)
    if text is None:
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    if default_region == "NL" and (plain := _plain_dutch_phone(text)):
        return plain
    return _parsed_phone(text, default_region)


def _parsed_phone(text: str, default_region: str) -> str | None:
    """The full parse and validity check (phonenumbers), for every number the fast path leaves."""
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_name(value: object) -> str | None:
    """Whitespace collapsed, case-folded (``casefold``: "STRASSE" and "Straße" are one name; a
    system that stores names in capitals writes ß as SS)."""
    text = _clean(value)
    return _SPACES.sub(" ", text).casefold() if text else None


def split_postcode(value: object) -> tuple[str | None, str | None]:
    """(PC4, PC6) of a Dutch postcode; (None, None) for a foreign or unparseable one."""
    text = _clean(value)
    if text is None:
        return None, None
    text = _SPACES.sub("", text).upper()
    m = _PC6.match(text)
    if m:
        return m.group(1), m.group(1) + m.group(2)
    m = _PC4.match(text)
    if m:
        return m.group(1), None
    return None, None


def fallback_identity(last_name: object, birth_date: object, postcode: object) -> str | None:
    """last name + birth date + PC6, the sector key of last resort; None unless all three."""
    name = normalise_name(last_name)
    _, pc6 = split_postcode(postcode)
    born = _clean(birth_date)
    if not (name and pc6 and born):
        return None
    return f"{name}|{born}|{pc6}"


def normalise_customer_id(value: object) -> str | None:
    text = _clean(value)
    return text
