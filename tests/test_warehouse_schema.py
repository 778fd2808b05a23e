"""The warehouse schema: tables of an older warehouse are brought to the current one."""

import duckdb
import pytest

from publieksdata.settings import PublieksdataError
from publieksdata.warehouse import transaction, work_connection

SECTOR = "9f" * 32  # a pseudonym: 64 hex digits
SECTOR_HEAD = int("9f" * 16, 16)  # its head: the first 128 bits


# pseudo.tickets and pseudo.person_record_keys as warehouses before the heads had them (before
# the seventeenth round of issue #8): the full pseudonyms on every ticket, no heads; with
# ``keyed``, the primary keys of before the scale work
_LEGACY = """
create schema if not exists {db}.pseudo;
create table {db}.pseudo.tickets (
    institution_code varchar not null, ticket_id varchar not null, order_id varchar,
    event_id varchar not null, event_start timestamp not null, sold_at timestamp not null,
    price decimal(12, 2) not null, ticket_type varchar, channel varchar, status varchar not null,
    sector_pseudonym varchar, customer_pseudonym varchar, pc4 varchar, country varchar,
    birth_year integer, gender varchar, research_opt_out boolean not null, key_id varchar,
    delivery_id varchar not null, loaded_at timestamp not null{tickets_key}
);
create table {db}.pseudo.person_record_keys (
    person_key varchar {person_key}, record_key double not null
);
"""


def _legacy(db: str, keyed: bool = False) -> str:
    return _LEGACY.format(
        db=db,
        tickets_key=",\n    primary key (institution_code, ticket_id)" if keyed else "",
        person_key="primary key" if keyed else "not null",
    )


def test_an_older_warehouse_keeps_each_pseudonym_once_and_heads_on_its_tickets(home):
    """A warehouse from before gets the head of every pseudonym it holds (dbt reads only the
    heads), and its tickets lose the full pseudonyms: each is kept once, in
    pseudo.person_record_keys. One that had no record key yet (a run that died before its
    last step) gets one from the next privacy step; an erased row (no pseudonym) keeps none."""
    from privacy.keyring import open_keyring
    from privacy.pseudonymise import complete_record_keys, record_key

    customer, late = "0a" * 32, "7c" * 32
    with duckdb.connect(str(home.warehouse)) as conn:
        [(db,)] = conn.execute("select current_database()").fetchall()
        conn.execute(_legacy(db))
        conn.execute(
            "insert into pseudo.tickets (institution_code, ticket_id, event_id, event_start, "
            "sold_at, price, status, sector_pseudonym, customer_pseudonym, research_opt_out, "
            "delivery_id, loaded_at) values "
            f"('th_a', 'T1', 'E1', now(), now(), 1, 'sold', '{SECTOR}', '{customer}', false, 'd1', now()), "
            "('th_a', 'T2', 'E1', now(), now(), 1, 'sold', null, null, false, 'd1', now()), "
            f"('th_a', 'T3', 'E1', now(), now(), 1, 'sold', '{late}', null, false, 'd2', now())"
        )  # fmt: skip
        conn.execute(
            f"insert into pseudo.person_record_keys values ('{SECTOR}', 0.5), ('{customer}', 0.75)"
        )
    with work_connection(home):
        pass
    with duckdb.connect(str(home.warehouse), read_only=True) as conn:
        assert conn.execute(
            "select ticket_id, sector_head, customer_head from pseudo.tickets order by 1"
        ).fetchall() == [
            ("T1", SECTOR_HEAD, int("0a" * 16, 16)), ("T2", None, None), ("T3", int("7c" * 16, 16), None)
        ]  # fmt: skip
        columns = {c[0] for c in conn.execute("describe pseudo.tickets").fetchall()}
        assert not {"sector_pseudonym", "customer_pseudonym"} & columns
        assert conn.execute(
            "select person_key, record_key, person_head from pseudo.person_record_keys order by 3"
        ).fetchall() == [
            (customer, 0.75, int("0a" * 16, 16)), (late, None, int("7c" * 16, 16)), (SECTOR, 0.5, SECTOR_HEAD)
        ]  # fmt: skip
    with work_connection(home) as conn:  # the second time there is nothing to do
        keyring = open_keyring(home)
        assert complete_record_keys(conn, keyring) == 1
        assert conn.execute(
            "select record_key from wh.pseudo.person_record_keys where person_key = ?", [late]
        ).fetchall() == [(record_key(keyring.derive("record"), late),)]
        assert complete_record_keys(conn, keyring) == 0


def test_a_pseudonym_that_is_not_hex_stops_the_upgrade_without_showing_it(home):
    """The heads are cast from the pseudonyms' text; a value that is not one (a damaged
    warehouse) stops the upgrade with an error that does not quote it, and changes nothing."""
    odd = "not-a-pseudonym-" + "z" * 48
    with duckdb.connect(str(home.warehouse)) as conn:
        [(db,)] = conn.execute("select current_database()").fetchall()
        conn.execute(_legacy(db))
        conn.execute(f"insert into pseudo.person_record_keys values ('{odd}', 0.5)")
    with pytest.raises(PublieksdataError) as raised:
        with work_connection(home):
            pass
    assert odd not in str(raised.value) and "withheld" in str(raised.value)
    with duckdb.connect(str(home.warehouse), read_only=True) as conn:
        columns = {c for (c,) in conn.execute(
            "select column_name from duckdb_columns() where table_name = 'person_record_keys'"
        ).fetchall()}  # fmt: skip
    assert "person_head" not in columns  # the transaction was rolled back whole


def _primary_keys(path) -> set[str]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return {t for (t,) in conn.execute(
            "select table_name from duckdb_constraints() where schema_name = 'pseudo' "
            "and constraint_type = 'PRIMARY KEY'").fetchall()}  # fmt: skip


def test_an_older_warehouse_loses_the_primary_keys_that_outgrow_memory(home):
    """pseudo.tickets and pseudo.person_record_keys had primary keys; at 50M tickets the record
    keys' index did not fit the privacy step's memory, the commit failed and invalidated the
    database. Opening an older warehouse rebuilds both without the key, rows kept."""
    with duckdb.connect(str(home.warehouse)) as conn:
        [(db,)] = conn.execute("select current_database()").fetchall()
        conn.execute(_legacy(db, keyed=True))
        conn.execute(
            "insert into pseudo.tickets values ('th_a', 'T1', null, 'E1', timestamp '2025-03-01', "
            f"timestamp '2025-02-01', 12.5, null, null, 'sold', '{SECTOR}', null, '1011', 'NL', "
            "1980, 'f', false, 'k1', 'd1', now())"
        )
        conn.execute(f"insert into pseudo.person_record_keys values ('{SECTOR}', 0.25)")
    assert _primary_keys(home.warehouse) >= {"tickets", "person_record_keys"}

    with work_connection(home):
        pass
    assert not _primary_keys(home.warehouse) & {"tickets", "person_record_keys"}
    with duckdb.connect(str(home.warehouse), read_only=True) as conn:
        assert conn.execute("select ticket_id, price from pseudo.tickets").fetchall() == [
            ("T1", 12.5)
        ]
        assert conn.execute("select * from pseudo.person_record_keys").fetchall() == [
            (SECTOR, 0.25, SECTOR_HEAD)
        ]
        assert conn.execute("select sector_head, customer_head from pseudo.tickets").fetchall() == [
            (SECTOR_HEAD, None)
        ]
        tables = {t for (t,) in conn.execute("select table_name from duckdb_tables()").fetchall()}
        assert not [t for t in tables if t.endswith("_keyed")]
    with work_connection(home):  # the second time there is nothing to do
        pass


def test_a_failed_transaction_reports_its_own_error_not_the_rollbacks():
    """After a commit that could not allocate, DuckDB's rollback raises a FatalException; the
    error that failed is the one that reaches the user."""

    class Invalidated:
        def __init__(self):
            self.statements = []

        def execute(self, sql):
            self.statements.append(sql)
            if sql == "rollback":
                raise duckdb.FatalException("database has been invalidated")

    conn = Invalidated()
    with pytest.raises(duckdb.TransactionException, match="could not allocate"):
        with transaction(conn):
            raise duckdb.TransactionException("Failed to commit: could not allocate block")
    assert conn.statements == ["begin transaction", "rollback"]

    real = duckdb.connect()
    real.execute("create table t (i integer)")
    with pytest.raises(ValueError):
        with transaction(real):
            real.execute("insert into t values (1)")
            raise ValueError("stop")
    with transaction(real):
        real.execute("insert into t values (2)")
    assert real.execute("select * from t").fetchall() == [(2,)]
