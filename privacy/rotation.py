"""Key rotation: a new key version, and the warehouse re-keyed from its pseudonyms.

Raw identifiers are dropped once a delivery is pseudonymised, so the warehouse
cannot be keyed again from them. It is re-keyed from what it holds: every
pseudonym p becomes HMAC(new key, "rekey:" + p), sector pseudonyms under the
new version's sector key, customer pseudonyms under its institution key. The
map old -> new is one-to-one (an HMAC collision aside, which is checked), so
every person keeps all their rows and every link between rows survives:
counts before and after are equal. Pseudonyms after a rotation are *chained*;
later deliveries apply the whole chain (privacy/pseudonymise.py), so a person
delivered after the rotation joins their history.

Order, so that a crash at any point can be finished by running ``keys rotate``
again: (1) the new version is stored in the keyring as *pending*; (2) in one
warehouse transaction, the person keys (pseudo.person_record_keys, where the full pseudonyms
are kept), the heads in pseudo.tickets and meta.erased are re-keyed (the record keys move to
the new pseudonyms, unchanged) and
meta.keyring records the new version; (3) the pending version becomes active.
Between (2) and (3) the warehouse refuses to run (check_keyring) until the
rotation is finished.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from privacy.keyring import activate_pending, open_keyring, pending_keyring
from privacy.pseudonymise import rekey
from publieksdata.settings import DataHome, PublieksdataError
from publieksdata.warehouse import (
    check_keyring,
    execute_on_pseudonyms,
    pseudonym_head,
    transaction,
    work_connection,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RotationOutcome:
    old_key_id: str
    new_key_id: str
    new_fingerprint: str
    sector_pseudonyms: int
    customer_pseudonyms: int
    ticket_rows: int
    resumed: bool = False


def _rekey_map(key: bytes, pseudonyms: list[str]) -> pa.Table:
    new = [rekey(key, p) for p in pseudonyms]
    if len(set(new)) != len(new):  # would merge two persons: never seen, but never silent
        raise PublieksdataError("key rotation aborted: two pseudonyms collided under the new key")
    return pa.table({"old": pa.array(pseudonyms, pa.string()), "new": pa.array(new, pa.string())})


def _with_heads(conn, name: str, table: pa.Table) -> None:
    """The map ``name``: old -> new pseudonym, with the heads (pseudonym_head) of both."""
    conn.register(f"{name}_arrow", table)
    try:
        execute_on_pseudonyms(conn, f"create or replace temp table {name} as select old, new, "
                              f"{pseudonym_head('old')} as old_head, "
                              f"{pseudonym_head('new')} as head from {name}_arrow",
                              "re-keying the heads")  # fmt: skip
    finally:
        conn.unregister(f"{name}_arrow")


def _distinct(conn, sql: str) -> list[str]:
    return [r[0] for r in conn.execute(sql).fetchall()]


def rotate_keys(home: DataHome) -> RotationOutcome:
    """Add a key version and re-key the warehouse to it; does not rebuild the marts."""
    current = open_keyring(home)
    with work_connection(home) as conn:
        latest = conn.execute(
            "select key_id, fingerprint from wh.meta.keyring order by since desc limit 1"
        ).fetchone()
        pending = pending_keyring(home)
        if pending is not None and latest is not None and latest[1] == pending.fingerprint:
            finish_only = True
        else:
            finish_only = False
            outcome = _rekey_warehouse(conn, home, current)
    if finish_only:
        ring = activate_pending(home)
        log.info("key rotation to %s finished (the warehouse was already re-keyed)", ring.key_id)
        return RotationOutcome(current.key_id, ring.key_id, ring.fingerprint, 0, 0, 0, True)
    ring = activate_pending(home)
    log.info("key rotated from %s to %s: %s rows re-keyed", current.key_id, ring.key_id,
             outcome.ticket_rows)  # fmt: skip
    return outcome


_COUNTS = """
    select count(sector_head), count(distinct sector_head),
           count(customer_head), count(distinct customer_head),
           (select count(*) from wh.meta.erased)
    from wh.pseudo.tickets
"""

# the person keys (pseudo.person_record_keys) whose heads the tickets hold in ``column``, and
# the suppression list's pseudonyms of ``kind``: everything keyed with that kind's key
_PSEUDONYMS = """
    select person_key from wh.pseudo.person_record_keys
    where person_head in (select {column} from wh.pseudo.tickets where {column} is not null)
    union select pseudonym from wh.meta.erased where kind = '{kind}'
"""


def _carry_record_keys(conn) -> None:
    """Each record key moves to its person's new pseudonym: the same persons keep the same
    perturbation (docs/metrics.md). Record keys are not derived again under the new version;
    a key whose pseudonym no ticket holds any more is dropped."""
    conn.execute(
        """
        create temp table record_keys_rekeyed as
        select coalesce(ms.new, mc.new) as person_key, r.record_key,
               coalesce(ms.head, mc.head) as person_head
        from wh.pseudo.person_record_keys r
        left join map_sector ms on ms.old = r.person_key
        left join map_customer mc on mc.old = r.person_key
        where coalesce(ms.new, mc.new) is not null
        """
    )
    conn.execute("delete from wh.pseudo.person_record_keys")
    conn.execute(
        "insert into wh.pseudo.person_record_keys by name select * from record_keys_rekeyed"
    )
    conn.execute("drop table record_keys_rekeyed")


def _rekey_warehouse(conn, home: DataHome, current) -> RotationOutcome:
    """Steps (1) and (2): a pending key version, and the warehouse re-keyed to it."""
    check_keyring(conn, current.key_id, current.fingerprint)
    pending = pending_keyring(home, create=True)
    sector_key = pending.chain("sector")[-1]
    customer_key = pending.chain("institution")[-1]

    sectors = _distinct(conn, _PSEUDONYMS.format(column="sector_head", kind="sector"))
    customers = _distinct(conn, _PSEUDONYMS.format(column="customer_head", kind="customer"))
    _with_heads(conn, "map_sector", _rekey_map(sector_key, sectors))
    _with_heads(conn, "map_customer", _rekey_map(customer_key, customers))
    try:
        with transaction(conn):
            before = conn.execute(_COUNTS).fetchone()
            rows = conn.execute(
                """
                update wh.pseudo.tickets set
                    sector_head = (select head from map_sector where old_head = sector_head),
                    customer_head =
                        (select head from map_customer where old_head = customer_head),
                    key_id = ?,
                    loaded_at = now()  -- every row changed: incremental dbt models rebuild all
                """,
                [pending.key_id],
            ).fetchone()[0]
            conn.execute(
                """
                create temp table erased_rekeyed as
                select coalesce(ms.new, mc.new) as pseudonym, e.kind
                from wh.meta.erased e
                left join map_sector ms on e.kind = 'sector' and ms.old = e.pseudonym
                left join map_customer mc on e.kind = 'customer' and mc.old = e.pseudonym
                """
            )
            conn.execute("delete from wh.meta.erased")
            conn.execute("insert into wh.meta.erased select * from erased_rekeyed")
            conn.execute("drop table erased_rekeyed")
            _carry_record_keys(conn)
            conn.execute(
                "insert into wh.meta.keyring values (?, ?, now())",
                [pending.key_id, pending.fingerprint],
            )
            if conn.execute(_COUNTS).fetchone() != before:
                raise PublieksdataError("key rotation aborted: the re-keyed warehouse lost a link")
    finally:
        with contextlib.suppress(duckdb.Error):  # never mask the error that failed
            conn.execute("drop table if exists map_sector; drop table if exists map_customer")
    return RotationOutcome(
        current.key_id, pending.key_id, pending.fingerprint, len(sectors), len(customers), rows
    )
