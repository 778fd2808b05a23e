"""Right to erasure (GDPR art. 17): a person out of the warehouse and out of every later delivery.

``erase_person`` turns the identifier a person gave (an e-mail address, a phone
number, or a member's customer number) into the pseudonyms the warehouse holds
for them, in Python, under the keyring's chain, and then, in one transaction:

- resolves the person: the sector pseudonym of an e-mail or phone plus the
  customer accounts seen with it; for a customer number, the account plus the
  sector pseudonyms seen with it at that member (and their accounts elsewhere);
- adds those pseudonyms to ``meta.erased`` (the suppression list: pseudonyms
  only, needed to keep the person out of later deliveries);
- unlinks their rows in ``pseudo.tickets`` (``unlink_erased``): the row stays,
  so ticket totals and revenue stay right, but it loses both pseudonyms (their heads) and the
  person's attributes (PC4, birth year, gender, country) -- it becomes a ticket
  that describes no one. A row of someone else that merely carried an erased
  customer number keeps its own sector pseudonym and loses only the link;
- deletes the erased pseudonyms from pseudo.person_record_keys (where the warehouse keeps
  each person key's full text, with its record key);
- writes one line to ``meta.erasure_log``: when, which kind of identifier, how
  many pseudonyms and rows -- never the identifier, never a pseudonym.

The dbt models and the release are rebuilt afterwards (the CLI runs the job).
The identifier is never logged, echoed or written; it lives in one local
variable until its pseudonym is computed.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field

import duckdb

from privacy.keyring import Keyring, open_keyring
from privacy.normalise import normalise_customer_id, normalise_email, normalise_phone
from privacy.pseudonymise import customer_pseudonym, sector_pseudonym
from publieksdata.settings import DataHome, PublieksdataError
from publieksdata.warehouse import (
    check_keyring,
    execute_on_pseudonyms,
    pseudonym_head,
    transaction,
    work_connection,
)

log = logging.getLogger(__name__)

KINDS = ("email", "phone", "customer_id")

ERASED_SECTOR = "(select pseudonym from wh.meta.erased where kind = 'sector')"
ERASED_CUSTOMER = "(select pseudonym from wh.meta.erased where kind = 'customer')"
# ... as heads, which is how pseudo.tickets holds a person (publieksdata/warehouse.py)
ERASED_SECTOR_HEADS = (f"(select {pseudonym_head('pseudonym')} from wh.meta.erased "
                       "where kind = 'sector')")  # fmt: skip
ERASED_CUSTOMER_HEADS = (f"(select {pseudonym_head('pseudonym')} from wh.meta.erased "
                         "where kind = 'customer')")  # fmt: skip


@dataclass(frozen=True)
class ErasureRequest:
    """What the person (or a member on their behalf) gave us. ``value`` never shows in a repr."""

    kind: str
    value: str = field(repr=False)
    institution: str | None = None


@dataclass(frozen=True)
class ErasureOutcome:
    erasure_id: str
    requested_by: str
    institution: str | None
    pseudonyms: int  # newly added to the suppression list
    ticket_rows: int  # rows of pseudo.tickets unlinked
    key_id: str


def _seed_pseudonyms(keyring: Keyring, request: ErasureRequest) -> tuple[list[str], list[str]]:
    """(sector pseudonyms, customer pseudonyms) of the identifier; errors never name the value."""
    if request.kind == "email":
        norm = normalise_email(request.value)
        if norm is None:
            raise PublieksdataError("the e-mail address given is not a valid address (not shown)")
        return [sector_pseudonym(keyring, "email", norm)], []
    if request.kind == "phone":
        norm = normalise_phone(request.value)
        if norm is None:
            raise PublieksdataError("the phone number given is not a valid number (not shown)")
        return [sector_pseudonym(keyring, "phone", norm)], []
    if request.kind == "customer_id":
        norm = normalise_customer_id(request.value)
        if not norm or not request.institution:
            raise PublieksdataError("a customer number needs --institution and a non-empty value")
        return [], [customer_pseudonym(keyring, request.institution, norm)]
    raise PublieksdataError(f"unknown identifier kind {request.kind!r}")


def _co_occurring(conn, wanted: str, given: str, pseudonyms: list[str]) -> set[str]:
    """The pseudonyms whose heads are in column ``wanted`` (sector_head, customer_head) on rows
    whose column ``given`` holds the head of one of ``pseudonyms``; each head's pseudonym is
    the one pseudo.person_record_keys keeps for it."""
    if not pseudonyms:
        return set()
    rows = execute_on_pseudonyms(
        conn,
        f"""
        select k.person_key from wh.pseudo.person_record_keys k
        where k.person_head in (
            select {wanted} from wh.pseudo.tickets
            where {given} in (select {pseudonym_head("p")} from unnest(?::varchar[]) as t(p))
        )
        """,
        "finding the person's other pseudonyms",
        [pseudonyms],
    ).fetchall()
    return {r[0] for r in rows}


def resolve_person(conn, sector: list[str], customer: list[str]) -> tuple[set[str], set[str]]:
    """The person's sector pseudonyms and customer accounts, one step out from what was given.

    From a customer account: the sector pseudonyms seen with it (the member vouches that the
    account is the person's), then every account seen with those. From an e-mail or phone: the
    accounts seen with it. No further: a shared account (a family's, a box office "guest")
    must not pull in other people's e-mail addresses.
    """
    sectors = set(sector) | _co_occurring(conn, "sector_head", "customer_head", customer)
    customers = set(customer) | _co_occurring(conn, "customer_head", "sector_head", sorted(sectors))
    return sectors, customers


def add_to_suppression_list(conn, kind: str, pseudonyms: set[str] | list[str]) -> int:
    """Add pseudonyms to meta.erased; returns how many were new."""
    if not pseudonyms:
        return 0
    before = conn.execute("select count(*) from wh.meta.erased").fetchone()[0]
    conn.execute(
        "insert into wh.meta.erased select distinct p, ? from unnest(?::varchar[]) as t(p) "
        "on conflict do nothing",
        [kind, sorted(pseudonyms)],
    )
    return conn.execute("select count(*) from wh.meta.erased").fetchone()[0] - before


def unlink_erased(conn) -> int:
    """Apply meta.erased to every row in wh.pseudo.tickets; returns the rows changed.

    A row is the erased person's when its sector pseudonym is erased, or when it has no sector
    pseudonym and its customer account is erased: it keeps its ticket facts and loses the
    pseudonyms and the person's attributes. A row with a live sector pseudonym and an erased
    account keeps its own pseudonym and loses only the account.
    """
    person_rows = execute_on_pseudonyms(
        conn,
        f"""
        update wh.pseudo.tickets set
            sector_head = null, customer_head = null,
            pc4 = null, birth_year = null, gender = 'unknown', country = null,
            loaded_at = now()  -- the row changed: its institution is rebuilt (incremental dbt)
        where sector_head in {ERASED_SECTOR_HEADS}
           or (sector_head is null and customer_head in {ERASED_CUSTOMER_HEADS})
        """,
        "unlinking the erased persons",
    ).fetchone()[0]
    account_rows = execute_on_pseudonyms(
        conn,
        "update wh.pseudo.tickets set customer_head = null, "
        f"loaded_at = now() where customer_head in {ERASED_CUSTOMER_HEADS}",
        "unlinking the erased accounts",
    ).fetchone()[0]
    # the record keys of erased pseudonyms go too (the perturbation keys of docs/metrics.md)
    conn.execute(
        "delete from wh.pseudo.person_record_keys "
        "where person_key in (select pseudonym from wh.meta.erased)"
    )
    return person_rows + account_rows


def _institution_known(home: DataHome, conn, institution: str) -> bool:
    from ingest.registry import load_registry

    try:
        if institution in load_registry(home):
            return True
    except PublieksdataError:
        pass
    return (
        conn.execute(
            "select count(*) from wh.pseudo.tickets where institution_code = ?", [institution]
        ).fetchone()[0]
        > 0
    )


def erase_person(home: DataHome, request: ErasureRequest) -> ErasureOutcome:
    """Erase one person from the warehouse and keep them out of later deliveries.

    Does not rebuild the marts or republish: the caller runs the job afterwards.
    """
    if request.kind not in KINDS:
        raise PublieksdataError(f"unknown identifier kind {request.kind!r}")
    keyring = open_keyring(home)
    seed_sector, seed_customer = _seed_pseudonyms(keyring, request)
    erasure_id = "e" + uuid.uuid4().hex[:16]
    with work_connection(home) as conn:
        check_keyring(conn, keyring.key_id, keyring.fingerprint)
        if request.institution is not None and not _institution_known(
            home, conn, request.institution
        ):
            raise PublieksdataError(
                f"institution {request.institution!r} is neither in the member registry nor in "
                "the warehouse; check the code"
            )
        with transaction(conn):
            sectors, customers = resolve_person(conn, seed_sector, seed_customer)
            added = add_to_suppression_list(conn, "sector", sectors)
            added += add_to_suppression_list(conn, "customer", customers)
            rows = unlink_erased(conn)
            conn.execute(
                "insert into wh.meta.erasure_log values (?, now(), ?, ?, ?, ?, ?, null)",
                [erasure_id, request.kind, request.institution, added, rows, keyring.key_id],
            )
    log.info("erasure %s: %s pseudonym(s) suppressed, %s row(s) unlinked", erasure_id, added, rows)
    return ErasureOutcome(
        erasure_id, request.kind, request.institution, added, rows, keyring.key_id
    )


def record_release(home: DataHome, erasure_id: str, release_id: str | None) -> None:
    """Note in the erasure log which release was the first without the person."""
    conn = duckdb.connect(str(home.warehouse))
    try:
        conn.execute(
            "update meta.erasure_log set release_id = ? where erasure_id = ?",
            [release_id, erasure_id],
        )
    finally:
        conn.close()


def compact_warehouse(home: DataHome) -> int:
    """Rewrite the warehouse into a fresh file; returns the bytes it shrank by.

    DuckDB leaves deleted and overwritten values in the file's free blocks until they are
    reused: after an erasure (or a key rotation) the person's old rows and pseudonyms would
    stay readable to anyone who parses the file. Copying the database into a new file and
    swapping it in leaves only live data. Run it after the rebuild, when dbt has replaced its
    tables too, and while no other process has the warehouse open.
    """
    if not home.warehouse.exists():
        return 0
    fresh = home.warehouse.with_name(".warehouse.compact.duckdb")
    for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
        leftover.unlink(missing_ok=True)
    try:
        conn = duckdb.connect(str(home.warehouse))
        conn.execute("checkpoint")
        before = conn.execute("select count(*) from pseudo.tickets").fetchone()[0]
        conn.close()
        conn = duckdb.connect(":memory:")
        conn.execute("attach ? as old_wh (read_only)", [str(home.warehouse)])
        # the new file is attached under the warehouse's own name: dbt's views name it
        conn.execute("attach ? as warehouse", [str(fresh)])
        conn.execute("copy from database old_wh to warehouse")
        after = conn.execute("select count(*) from warehouse.pseudo.tickets").fetchone()[0]
        conn.close()
    except duckdb.IOException as exc:
        fresh.unlink(missing_ok=True)
        raise PublieksdataError(
            f"the warehouse {home.warehouse} is in use by another process; stop it and run "
            "the command again"
        ) from exc
    if after != before:
        fresh.unlink(missing_ok=True)
        raise PublieksdataError("compacting the warehouse lost rows; the old file is kept")
    shrunk = home.warehouse.stat().st_size - fresh.stat().st_size
    os.replace(fresh, home.warehouse)
    return shrunk
