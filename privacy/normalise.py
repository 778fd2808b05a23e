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
_PC6 = re.compile(r"^([1-9][0-9]{3})\s?([A-Z]{2})$")
_PC4 = re.compile(r"^([1-9][0-9]{3})$")


def _clean(value: object) -> str | None:
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", str(value)).strip()
    return text or None


def normalise_email(value: object) -> str | None:
    """NFKC, trimmed, lower-cased; None when the syntax is not an e-mail address."""
    text = _clean(value)
    if text is None:
        return None
    text = _SPACES.sub("", text).lower()
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
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_name(value: object) -> str | None:
    text = _clean(value)
    return _SPACES.sub(" ", text).lower() if text else None


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
