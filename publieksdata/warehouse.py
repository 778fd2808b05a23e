"""The warehouse file: its raw (pseudonymised) tables and how the pipeline opens it.

dbt owns every model built on top; the pipeline owns the tables below, which
dbt reads as sources. One writer at a time: the pipeline opens the warehouse
for its step and closes it before dbt runs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from publieksdata.settings import DataHome, PublieksdataError

DDL = """
create schema if not exists {db}.intake;
create schema if not exists {db}.pseudo;
create schema if not exists {db}.reference;
create schema if not exists {db}.meta;

create table if not exists {db}.intake.deliveries (
    delivery_id varchar primary key,
    sha256 varchar not null,
    institution_code varchar not null,
    file_name varchar not null,
    kind varchar,
    file_format varchar,
    status varchar not null,          -- validated, accepted, rejected, duplicate
    rows_total bigint,
    rows_loaded bigint,
    soft_problems json,
    reason varchar,
    duplicate_of varchar,
    received_at timestamp not null,
    finished_at timestamp
);

create table if not exists {db}.pseudo.tickets (
    institution_code varchar not null,
    ticket_id varchar not null,
    order_id varchar,
    event_id varchar not null,
    event_start timestamp not null,
    sold_at timestamp not null,
    price decimal(12, 2) not null,
    ticket_type varchar,
    channel varchar,
    status varchar not null,
    pc4 varchar,
    country varchar,
    birth_year integer,
    gender varchar,
    research_opt_out boolean not null,
    key_id varchar,
    delivery_id varchar not null,
    loaded_at timestamp not null,
    -- the persons, by the first 128 bits of their pseudonyms as a number (pseudonym_head): the
    -- sector-wide pseudonym (e-mail, phone or fallback key) and the institution-scoped one of
    -- the customer number. What dbt groups and joins persons on: a fifth less of its CPU than
    -- the 64-character text (docs/performance.md, seventeenth round). The full pseudonym of
    -- each head is kept once, in pseudo.person_record_keys (person_key), not on every ticket:
    -- that cost a fifth of the privacy step's insert (twenty-fourth round)
    sector_head uhugeint,
    customer_head uhugeint
    -- one row per (institution_code, ticket_id): kept by the privacy step (a later delivery of a
    -- ticket replaces its row) and tested by dbt (models/staging/_staging.yml), not by a primary
    -- key, whose index cost a fifth of the step at 10M rows (docs/decisions.md, "Scale")
);

create table if not exists {db}.pseudo.events (
    institution_code varchar not null,
    event_id varchar not null,
    starts_at timestamp not null,
    discipline varchar not null,
    event_name varchar,
    venue varchar,
    capacity integer,
    delivery_id varchar not null,
    loaded_at timestamp not null,
    primary key (institution_code, event_id)
);

-- The person keys: every pseudonym a ticket holds (a sector or an institution-scoped
-- pseudonym; pseudo.tickets keeps only its head), written in the same transaction as the
-- tickets, with its record key for the cell-key perturbation of open years (docs/metrics.md):
-- an HMAC of the pseudonym under the keyring's "record" key, as a number in [0, 1) on a grid of
-- 2^-24 (so sums are exact in any order). Rotation re-keys the pseudonyms (and carries the
-- record keys over), erasure removes them. The record key is null only for a pseudonym a
-- warehouse of an older version held on its tickets without one (ensure_schema): the privacy
-- step fills it in before dbt runs (complete_record_keys).
-- One row per person key: the privacy step adds only keys it does not hold yet, and dbt tests
-- it (unique on stg_pseudo__person_record_keys). No primary key: its index must fit in
-- DuckDB's memory, and at 50M tickets (13M person keys) it did not in the privacy step's 2GB.
create table if not exists {db}.pseudo.person_record_keys (
    person_key varchar not null,
    record_key double,
    person_head uhugeint              -- pseudonym_head(person_key)
);

create table if not exists {db}.meta.keyring (
    key_id varchar not null,
    fingerprint varchar not null,
    since timestamp not null
);

-- Right to erasure (privacy/erasure.py): the pseudonyms of erased persons, applied to every
-- later delivery, and a log that says an erasure happened -- never whose.
create table if not exists {db}.meta.erased (
    pseudonym varchar primary key,    -- a sector or institution-scoped pseudonym
    kind varchar not null             -- sector or customer
);

create table if not exists {db}.meta.erasure_log (
    erasure_id varchar primary key,
    erased_at timestamp not null,
    requested_by varchar not null,    -- email, phone or customer_id: the kind, never the value
    institution_code varchar,         -- the member a customer_id belongs to
    pseudonyms bigint not null,       -- pseudonyms added to meta.erased
    ticket_rows bigint not null,      -- rows of pseudo.tickets unlinked from the person
    key_id varchar not null,
    release_id varchar                -- the release republished without the person
);
"""


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """``begin`` ... ``commit``; on an error, a rollback that never replaces the error that
    failed (after a commit that could not allocate, DuckDB invalidates the database and the
    rollback itself raises a FatalException, which used to hide the real cause)."""
    conn.execute("begin transaction")
    try:
        yield conn
        conn.execute("commit")
    except Exception:
        with contextlib.suppress(duckdb.Error):
            conn.execute("rollback")
        raise


def pseudonym_head(expr: str) -> str:
    """SQL: the first 128 bits of the pseudonym ``expr`` (64 hex digits) as a UHUGEINT.

    A pseudonym is stored once, as its full text, in pseudo.person_record_keys (where rotation
    re-keys it and erasure removes it); the tickets hold its head, on which dbt groups and
    joins persons as a 16-byte number instead of a 64-character string. Two persons share a
    head only if their HMACs agree in 128 bits (probability about n^2 / 2^129: below 10^-22
    for 10^8 persons).
    """
    return f"cast('0x' || left({expr}, 32) as uhugeint)"


# the heads of the pseudonyms per table, beside the pseudonym they derive from
HEADS = {"person_record_keys": (("person_head", "person_key"),)}
# ... and in a warehouse of an older version, which kept the pseudonyms on every ticket
# (moved into pseudo.person_record_keys by ensure_schema, _move_pseudonyms_out)
LEGACY_HEADS = {
    "tickets": (("sector_head", "sector_pseudonym"), ("customer_head", "customer_pseudonym")),
}

# tables that had a primary key in warehouses created before the scale work (issue #8)
_KEYS_DROPPED = ("tickets", "person_record_keys")


def ensure_schema(conn: duckdb.DuckDBPyConnection, db: str) -> None:
    _drop_old_primary_keys(conn, db)
    conn.execute(DDL.format(db=db))
    _add_pseudonym_heads(conn, db)
    _move_pseudonyms_out(conn, db)


def _columns(conn: duckdb.DuckDBPyConnection, db: str, table: str) -> set[str]:
    return {
        name
        for (name,) in conn.execute(
            "select column_name from duckdb_columns() where database_name = ? "
            "and schema_name = 'pseudo' and table_name = ?",
            [db, table],
        ).fetchall()
    }


def _add_pseudonym_heads(conn: duckdb.DuckDBPyConnection, db: str) -> None:
    """A warehouse from before the heads gets them, once, in one transaction: the columns, and
    the head of every pseudonym it holds."""
    for table, heads in (*HEADS.items(), *LEGACY_HEADS.items()):
        present = _columns(conn, db, table)
        missing = [(head, source) for head, source in heads
                   if head not in present and source in present]  # fmt: skip
        if not missing:
            continue
        with transaction(conn):
            for head, _ in missing:
                conn.execute(f"alter table {db}.pseudo.{table} add column {head} uhugeint")
            _fill_heads(conn, db, table, missing)


def _fill_heads(conn: duckdb.DuckDBPyConnection, db: str, table: str,
                heads: tuple | list) -> None:  # fmt: skip
    sets = ", ".join(f"{head} = {pseudonym_head(source)}" for head, source in heads)
    execute_on_pseudonyms(conn, f"update {db}.pseudo.{table} set {sets}", "adding the heads")


def _move_pseudonyms_out(conn: duckdb.DuckDBPyConnection, db: str) -> None:
    """A warehouse of an older version kept the full pseudonyms on every ticket: each one that
    pseudo.person_record_keys does not hold yet goes there (its record key left to the next
    privacy step: filling it needs the keyring), then the two columns are dropped. Once, in one
    transaction; the heads (already there, or added by _add_pseudonym_heads) stay."""
    legacy = [source for _, source in LEGACY_HEADS["tickets"]
              if source in _columns(conn, db, "tickets")]  # fmt: skip
    if not legacy:
        return
    pseudonyms = " union ".join(f"select {source} from {db}.pseudo.tickets "
                                f"where {source} is not null" for source in legacy)  # fmt: skip
    with transaction(conn):
        # an older version's record keys were never null
        conn.execute(
            f"alter table {db}.pseudo.person_record_keys alter column record_key drop not null"
        )
        execute_on_pseudonyms(
            conn,
            f"insert into {db}.pseudo.person_record_keys (person_key, record_key, person_head) "
            f"select p, null, {pseudonym_head('p')} from ({pseudonyms}) as legacy(p) "
            f"where not exists (select 1 from {db}.pseudo.person_record_keys k "
            "where k.person_key = legacy.p)",
            "moving the pseudonyms out of the tickets",
        )
        for source in legacy:
            conn.execute(f"alter table {db}.pseudo.tickets drop column {source}")


def execute_on_pseudonyms(conn, sql: str, what: str, params: list | None = None):
    """Run ``sql``, which reads pseudonyms; on failure an error that names only ``what`` and
    DuckDB's error class: a failed cast quotes the value it failed on, here a pseudonym."""
    try:
        return conn.execute(sql, params) if params is not None else conn.execute(sql)
    except duckdb.Error as exc:
        raise PublieksdataError(
            f"{what} failed in DuckDB ({type(exc).__name__}); the message is withheld because "
            "it may quote a pseudonym"
        ) from None


def _drop_old_primary_keys(conn: duckdb.DuckDBPyConnection, db: str) -> None:
    """A warehouse from before keeps no primary key on pseudo.tickets or
    pseudo.person_record_keys: the table is rebuilt without it, once, in one transaction (DuckDB
    cannot drop a key in place). An index that outgrows DuckDB's memory fails the commit and
    invalidates the database (50M tickets, docs/performance.md)."""
    for table in _KEYS_DROPPED:
        [(keyed,)] = conn.execute(
            "select count(*) from duckdb_constraints() where database_name = ? "
            "and schema_name = 'pseudo' and table_name = ? and constraint_type = 'PRIMARY KEY'",
            [db, table],
        ).fetchall()
        if not keyed:
            continue
        with transaction(conn):
            conn.execute(f"alter table {db}.pseudo.{table} rename to {table}_keyed")
            conn.execute(DDL.format(db=db))
            # the pseudonyms an older version kept on the tickets come along (as text), for
            # _move_pseudonyms_out; the heads are filled from them
            heads = (*HEADS.get(table, ()), *LEGACY_HEADS.get(table, ()))
            for _, source in heads:
                if source not in _columns(conn, db, table):
                    conn.execute(f"alter table {db}.pseudo.{table} add column {source} varchar")
            conn.execute(f"insert into {db}.pseudo.{table} by name "
                         f"select * from {db}.pseudo.{table}_keyed")  # fmt: skip
            _fill_heads(conn, db, table, heads)
            conn.execute(f"drop table {db}.pseudo.{table}_keyed")


def work_memory_limit() -> str:
    """DuckDB's memory limit for parsing deliveries (PUBLIEKSDATA_WORK_MEMORY, default 512MB).

    Past it DuckDB spills to quarantine/.spill (0700), so a delivery of any size streams.
    """
    return os.environ.get("PUBLIEKSDATA_WORK_MEMORY", "512MB")


def privacy_memory_limit() -> str:
    """DuckDB's memory limit for the privacy step (PUBLIEKSDATA_PRIVACY_MEMORY, default 2GB).

    Higher than intake's: a group of deliveries is joined with its pseudonyms in one
    transaction, and the primary-key index of the record keys (one entry per person of the
    sector) has to fit in memory beside it.
    """
    return os.environ.get("PUBLIEKSDATA_PRIVACY_MEMORY", "2GB")


@contextmanager
def work_connection(
    home: DataHome, file_key: bytes | None = None, memory_limit: str | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with the warehouse attached as ``wh``.

    Raw deliveries are parsed in the in-memory database (spilling, if ever,
    into the 0700 quarantine folder), so identifiers never touch the
    warehouse file; only pseudonymised rows are written to ``wh``. With
    ``file_key``, sealed files in quarantine are readable (and writable) as
    ``sealed://<path>`` (ingest/sealed.py).
    """
    spill = home.quarantine / ".spill"
    spill.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(
        ":memory:",
        config={"temp_directory": str(spill), "memory_limit": memory_limit or work_memory_limit()},
    )
    try:
        try:
            conn.execute("attach ? as wh", [str(home.warehouse)])
        except duckdb.IOException as exc:
            raise PublieksdataError(
                f"the warehouse {home.warehouse} is in use by another process; "
                "wait for the running job to finish"
            ) from exc
        ensure_schema(conn, "wh")
        # checkpoint when the write-ahead log reaches 1 GB (or at close), not at DuckDB's
        # default 16 MB: a night of many deliveries otherwise pays a checkpoint every few
        # commits. A crash loses nothing: the next open replays the log.
        conn.execute("set checkpoint_threshold = '1GB'")
        if file_key is not None:
            from ingest.sealed import SealedFileSystem

            conn.register_filesystem(SealedFileSystem(file_key))
        yield conn
    finally:
        conn.close()


def check_keyring(conn: duckdb.DuckDBPyConnection, key_id: str, fingerprint: str) -> None:
    """Refuse to mix pseudonyms of two keys: the warehouse remembers the key it was built with."""
    row = conn.execute(
        "select key_id, fingerprint from wh.meta.keyring order by since desc limit 1"
    ).fetchone()
    if row is None:
        conn.execute("insert into wh.meta.keyring values (?, ?, now())", [key_id, fingerprint])
        return
    if row[1] != fingerprint:
        raise PublieksdataError(
            f"the warehouse was built with key {row[0]} (fingerprint {row[1]}) but the keyring's "
            f"active key is {key_id} (fingerprint {fingerprint}); use the data home's own master "
            "key and keyring, or re-key the warehouse with 'publieksdata keys rotate'"
        )
