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
    return hmac.digest(key, f"{kind}:{value}".encode(), "sha256").hex()


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


RECORD_KEY_BITS = 24  # record keys lie on a grid of 2^-24: a sum of up to 2^29 of them is exact


def record_key(key: bytes, person_key: str) -> float:
    """A person's record key in [0, 1) for the cell-key perturbation (docs/metrics.md).

    An HMAC of the person key (a pseudonym) under the keyring's "record" key, cut to
    RECORD_KEY_BITS bits. On that grid a double holds any sum of a cell's record keys exactly,
    so a cell's key does not depend on the order in which the engine adds them up.
    """
    digest = hmac.digest(key, f"record:{person_key}".encode(), "sha256")
    return int.from_bytes(digest[: RECORD_KEY_BITS // 8], "big") / 2**RECORD_KEY_BITS


def add_person_keys(conn, keyring: Keyring, candidates_sql: str) -> int:
    """Store the person keys of ``candidates_sql`` (columns: a pseudonym, its head; none of them
    in pseudo.person_record_keys yet) with their record keys; returns how many.

    One HMAC per new person key, computed by DuckDB with the record key bound as a parameter
    (privacy/keyed_sql.py; ``record_key`` above is the reference), never as SQL text. A person
    who has a record key keeps it (after a key rotation that is the key carried over from the
    old pseudonym, privacy/rotation.py).
    """
    [(n,)] = _execute_with_record_key(
        conn, keyring, "candidate.person_key",
        lambda expr: "insert into wh.pseudo.person_record_keys (person_key, record_key, "
        f"person_head) select candidate.person_key, {expr}, candidate.person_head "
        f"from ({candidates_sql}) as candidate(person_key, person_head)",
    ).fetchall()  # fmt: skip
    return n


def complete_record_keys(conn, keyring: Keyring) -> int:
    """Give every person key without a record key its key; returns how many.

    The privacy step stores a new person's key with their pseudonym; only a warehouse of an
    older version, whose tickets held the pseudonyms, can have person keys without one
    (publieksdata/warehouse.py moves its pseudonyms into pseudo.person_record_keys). The
    privacy step ends with this, so dbt never sees one missing.
    """
    [(missing,)] = conn.execute(
        "select count(*) from wh.pseudo.person_record_keys where record_key is null"
    ).fetchall()
    if not missing:
        return 0
    _execute_with_record_key(
        conn, keyring, "person_key",
        lambda expr: f"update wh.pseudo.person_record_keys set record_key = {expr} "
        "where record_key is null",
    )  # fmt: skip
    return missing


def _execute_with_record_key(conn, keyring: Keyring, person_key_sql: str,
                             sql_of: Callable[[str], str]):  # fmt: skip
    """Run ``sql_of(expr)``, where ``expr`` is the record key of ``person_key_sql`` computed by
    DuckDB, its key bound as a parameter (privacy/keyed_sql.py), never SQL text."""
    from privacy.keyed_sql import KeyParams, execute_keyed

    params = KeyParams("r")
    expr = params.record_key_sql(keyring.derive("record"), person_key_sql)
    return execute_keyed(conn, sql_of(expr), params, "computing record keys")
