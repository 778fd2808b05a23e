"""Keyed pseudonyms and the privacy step that turns a validated delivery into warehouse rows.

Pseudonyms are HMAC-SHA256 under keys derived from the keyring. They are
computed in Python once per *distinct* identifier value and joined back in
DuckDB through a registered Arrow table, so the key never enters SQL text and
a million rows of one person cost one HMAC. Direct identifiers are dropped in
the same statement that writes the rows: nothing but pseudonyms, PC4, birth
year and coarse attributes leaves quarantine.

After key rotations a pseudonym is *chained*: the first version keys the
value, every later version keys the pseudonym before it,
HMAC(vn, "rekey:" + ... HMAC(v1, kind + ":" + value)). That is exactly what
``publieksdata keys rotate`` does to the warehouse, so a person delivered
after a rotation lands on the pseudonym their history was re-keyed to.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence

import pyarrow as pa

from privacy.keyring import Keyring
from privacy.normalise import (
    fallback_identity,
    normalise_customer_id,
    normalise_email,
    normalise_phone,
)


def pseudonym(key: bytes, kind: str, value: str) -> str:
    """HMAC-SHA256 of ``kind:value``, hex. ``kind`` separates e-mail, phone, fallback, customer."""
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


REKEY = "rekey"


def chained_pseudonym(keys: Sequence[bytes], kind: str, value: str) -> str:
    """The pseudonym under a chain of key versions, oldest first (see the module docstring)."""
    result = pseudonym(keys[0], kind, value)
    for key in keys[1:]:
        result = rekey(key, result)
    return result


def rekey(key: bytes, earlier_pseudonym: str) -> str:
    """One link of the chain: the pseudonym of the version before, keyed with the next version."""
    return pseudonym(key, REKEY, earlier_pseudonym)


def sector_pseudonym(keyring: Keyring, kind: str, normalised: str) -> str:
    return chained_pseudonym(keyring.chain("sector"), kind, normalised)


def customer_pseudonym(keyring: Keyring, institution_code: str, customer_id: str) -> str:
    """Institution-scoped: the same customer number at two institutions gives two pseudonyms."""
    return chained_pseudonym(
        keyring.chain("institution"), f"customer:{institution_code}", customer_id
    )


def pseudonym_map(
    values: Iterable[object],
    normalise: Callable[[object], str | None],
    keyed: Callable[[str], str],
) -> tuple[pa.Table, int]:
    """Map each distinct raw value to its pseudonym; returns (table raw->pseudonym, unparseable).

    Values that do not normalise are left out of the map (they stay missing)
    and counted, never named.
    """
    raws: list[str] = []
    pseudos: list[str] = []
    unparseable = 0
    cache: dict[str, str | None] = {}
    for raw in values:
        if raw is None:
            continue
        raw = str(raw)
        norm = normalise(raw)
        if norm is None:
            unparseable += 1
            continue
        if norm not in cache:
            cache[norm] = keyed(norm)
        raws.append(raw)
        pseudos.append(cache[norm])
    return pa.table(
        {"raw": pa.array(raws, pa.string()), "pseudonym": pa.array(pseudos, pa.string())}
    ), unparseable


def email_map(keyring: Keyring, values: Iterable[object]) -> tuple[pa.Table, int]:
    keys = keyring.chain("sector")
    return pseudonym_map(values, normalise_email, lambda v: chained_pseudonym(keys, "email", v))


def phone_map(keyring: Keyring, values: Iterable[object]) -> tuple[pa.Table, int]:
    keys = keyring.chain("sector")
    return pseudonym_map(values, normalise_phone, lambda v: chained_pseudonym(keys, "phone", v))


def fallback_map(keyring: Keyring, triples: Iterable[tuple[object, object, object]]) -> pa.Table:
    """Map (last_name, birth_date, postcode) triples to the fallback sector pseudonym."""
    keys = keyring.chain("sector")
    names, births, postcodes, pseudos = [], [], [], []
    for last_name, birth_date, postcode in triples:
        ident = fallback_identity(last_name, birth_date, postcode)
        if ident is None:
            continue
        names.append(str(last_name))
        births.append(str(birth_date))
        postcodes.append(str(postcode))
        pseudos.append(chained_pseudonym(keys, "fallback", ident))
    return pa.table(
        {
            "last_name": pa.array(names, pa.string()),
            "birth_date": pa.array(births, pa.string()),
            "postcode": pa.array(postcodes, pa.string()),
            "pseudonym": pa.array(pseudos, pa.string()),
        }
    )


def customer_map(keyring: Keyring, institution_code: str, values: Iterable[object]) -> pa.Table:
    keys = keyring.chain("institution")
    table, _ = pseudonym_map(
        values,
        normalise_customer_id,
        lambda v: chained_pseudonym(keys, f"customer:{institution_code}", v),
    )
    return table
