"""Pseudonyms and identifier normalisation as DuckDB SQL, with the keys bound as parameters.

The privacy step used to compute one HMAC per distinct identifier in Python and join the
result back through a registered Arrow table. At national scale that is millions of Python
calls a night (normalise, HMAC, hex, list building) on one core. Here the same work is one
set-based statement per identifier kind, run by DuckDB on every core:

- **HMAC-SHA256 in SQL.** HMAC(K, m) = H((K xor opad) || H((K xor ipad) || m)) (RFC 2104).
  The two padded keys are computed in Python and *bound* as BLOB parameters (``$name``), so
  no key is ever part of SQL text, a log line or dbt; DuckDB's ``sha256`` does the hashing.
  ``tests/test_keyed_sql.py`` proves the result equal to ``privacy.pseudonymise`` (the
  reference, still used for single values: erasure, rotation) for chains of key versions.
- **Normalisation in SQL for the plain shapes only.** Each ``*_sql`` function below gives
  the normalised value for raw values of a plain printable-ASCII shape, and NULL where the
  value needs the full rules of ``privacy.normalise`` (Unicode, odd whitespace, e-mail
  addresses email-validator must decide, foreign phone numbers). The privacy step sends only
  those few distinct values through Python. A SQL fast path only ever answers what Python
  answers (hypothesis tests in ``tests/test_keyed_sql.py``).

Errors of statements that carry bound keys are re-raised without DuckDB's message: a
conversion error quotes the value it failed on, and that value may be an identifier.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from privacy.normalise import _NL_GENERAL, _NL_VALID, _SPECIAL_USE_TLDS
from privacy.pseudonymise import RECORD_KEY_BITS, REKEY

_BLOCK = 64  # SHA-256 block size (bytes)


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """(K xor ipad, K xor opad) of RFC 2104 for SHA-256."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


class KeyParams:
    """Named parameters holding padded keys; SQL refers to them by name only.

    >>> params = KeyParams("k")
    >>> expr = params.chained_hmac_sql([b"a" * 32], "email", "x")
    >>> "$k0i" in expr and len(params.values) == 2
    True
    """

    def __init__(self, prefix: str = "k"):
        self.prefix = prefix
        self.values: dict[str, bytes] = {}

    def _bind(self, key: bytes) -> tuple[str, str]:
        n = len(self.values) // 2
        inner, outer = f"{self.prefix}{n}i", f"{self.prefix}{n}o"
        self.values[inner], self.values[outer] = hmac_pads(key)
        return inner, outer

    def hmac_sql(self, key: bytes, message_sql: str) -> str:
        """Hex HMAC-SHA256 of the VARCHAR expression ``message_sql`` (its UTF-8 bytes)."""
        inner, outer = self._bind(key)
        return f"sha256(${outer} || unhex(sha256(${inner} || encode({message_sql}))))"

    def chained_hmac_sql(self, keys: Sequence[bytes], kind: str, value_sql: str,
                         kind_sql: str | None = None) -> str:  # fmt: skip
        """``privacy.pseudonymise.chained_pseudonym`` as SQL: the first version keys
        ``kind:value``, every later version keys ``rekey:`` + the pseudonym before it.
        ``kind_sql`` (an SQL expression) replaces the literal ``kind`` where the kind depends
        on the row (the institution of a customer number)."""
        if not keys:
            raise ValueError("a pseudonym needs at least one key version")
        kind_expr = f"({kind_sql}) || ':'" if kind_sql is not None else _lit(kind + ":")
        expr = self.hmac_sql(keys[0], f"{kind_expr} || ({value_sql})")
        for key in keys[1:]:
            expr = self.hmac_sql(key, f"{_lit(REKEY + ':')} || {expr}")
        return expr

    def record_key_sql(self, key: bytes, person_key_sql: str) -> str:
        """``privacy.pseudonymise.record_key`` as SQL: the first RECORD_KEY_BITS bits of the
        HMAC of ``record:`` + person key, as a DOUBLE in [0, 1)."""
        digits = RECORD_KEY_BITS // 4
        digest = self.hmac_sql(key, f"'record:' || ({person_key_sql})")
        return (
            f"(cast(('0x' || substr({digest}, 1, {digits})) as bigint) "
            f"/ {float(2**RECORD_KEY_BITS)!r})"
        )


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# Printable ASCII: no whitespace other than the space itself, nothing Unicode normalisation or
# the removal of format characters would change, nothing Python's strip() treats differently.
_PRINTABLE = "'^[ -~]+$'"
_PRINTABLE_NO_SPACE = "'^[!-~]+$'"

_PLAIN_EMAIL_RE2 = (
    r"^[a-z0-9]+(?:[._+-][a-z0-9]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}$"
)


def email_sql(raw: str) -> str:
    """``normalise_email`` for a plain address (lower-cased), else NULL (Python decides).

    The Python fast path's look-aheads (RE2 has none) become length checks: 6..254 characters,
    1..64 before the @."""
    lowered = f"lower({raw})"
    domain = f"split_part({lowered}, '@', 2)"
    special = ", ".join(_lit(t) for t in sorted(_SPECIAL_USE_TLDS))
    return (
        f"(case when regexp_matches({raw}, {_PRINTABLE_NO_SPACE}) "
        f"and length({raw}) between 6 and 254 and strpos({raw}, '@') between 2 and 65 "
        f"and regexp_matches({lowered}, {_lit(_PLAIN_EMAIL_RE2)}) "
        f"and length({domain}) <= 253 and strpos({domain}, '--') = 0 "
        f"and regexp_extract({domain}, '\\.([a-z]+)$', 1) not in ({special}) "
        f"then {lowered} end)"
    )


def phone_sql(raw: str) -> str:
    """``normalise_phone`` (region NL) for a plain Dutch number (digits, +, spaces, hyphens),
    as E.164; NULL for everything else (Python and phonenumbers decide)."""
    trimmed = f"trim({raw})"
    international = (
        f"(case when starts_with({trimmed}, '00') then '+' || substr({trimmed}, 3) "
        f"else {trimmed} end)"
    )
    compact = f"regexp_replace({international}, '[ -]+', '', 'g')"
    national = f"regexp_extract({compact}, '^(?:\\+31|0)([1-9][0-9]{{8}})$', 1)"
    valid = " or ".join(f"regexp_full_match({national}, {_lit(p.pattern)})" for p in _NL_VALID)
    return (
        f"(case when regexp_matches({raw}, '^[0-9+ -]+$') and {national} <> '' "
        f"and regexp_full_match({national}, {_lit(_NL_GENERAL.pattern)}) and ({valid or 'false'}) "
        f"then '+31' || {national} end)"
    )


def plain_sql(raw: str) -> str:
    """TRUE where ``raw`` is printable ASCII, so the ``*_sql`` functions below are the whole
    answer (NULL from them then means "not a value", not "ask Python")."""
    return f"regexp_matches({raw}, {_PRINTABLE})"


def name_sql(raw: str) -> str:
    """``normalise_name`` of a printable-ASCII name: trimmed, spaces collapsed, lower case."""
    return f"nullif(lower(regexp_replace(trim({raw}), ' +', ' ', 'g')), '')"


def pc6_sql(raw: str) -> str:
    """PC6 of ``split_postcode`` for a printable-ASCII postcode (spaces removed, upper case)."""
    compact = f"upper(replace({raw}, ' ', ''))"
    return (
        f"(case when regexp_matches({compact}, '^[1-9][0-9]{{3}}[A-Z]{{2}}$') then {compact} end)"
    )


def pc4_sql(raw: str) -> str:
    """PC4 of ``split_postcode`` for a printable-ASCII postcode."""
    compact = f"upper(replace({raw}, ' ', ''))"
    return (
        f"(case when regexp_matches({compact}, '^[1-9][0-9]{{3}}([A-Z]{{2}})?$') "
        f"then substr({compact}, 1, 4) end)"
    )


def customer_id_sql(raw: str) -> str:
    """``normalise_customer_id`` of a printable-ASCII customer number: trimmed, NULL if empty."""
    return f"nullif(trim({raw}), '')"


class KeyedStatementError(RuntimeError):
    """A statement that carried bound keys failed; DuckDB's own message is withheld (it can
    quote the value a conversion failed on)."""


def execute_keyed(conn, sql: str, params: KeyParams, what: str):
    """Run ``sql`` with the padded keys of ``params`` bound; on failure raise an error that
    names only ``what`` and the DuckDB error class (never its message, never the values)."""
    try:
        return conn.execute(sql, params.values)
    except Exception as exc:  # noqa: BLE001 - any DuckDB error: its text may quote a value
        raise KeyedStatementError(
            f"{what} failed in DuckDB ({type(exc).__name__}); the message is withheld because "
            "it may quote an identifier"
        ) from None
