"""The warehouse schema: tables of an older warehouse are brought to the current one."""

import duckdb
import pytest

from publieksdata.settings import PublieksdataError
from publieksdata.warehouse import DDL, transaction, work_connection

SECTOR = "9f" * 32  # a pseudonym: 64 hex digits
SECTOR_HEAD = int("9f" * 16, 16)  # its head: the first 128 bits


def _without_heads(ddl: str) -> str:
    """The schema before the pseudonyms' heads (the seventeenth round of issue #8)."""
    start = ddl.index("    loaded_at timestamp not null,\n    -- the first 128 bits")
    end = ddl.index("    customer_head uhugeint\n") + len("    customer_head uhugeint\n")
    old = ddl[:start] + "    loaded_at timestamp not null\n" + ddl[end:]
    old = old.replace(
        "    record_key double not null,\n    person_head uhugeint              -- pseudonym_head(person_key)\n",
        "    record_key double not null\n",
    )
    assert "uhugeint" not in old
    return old


def test_an_older_warehouse_gets_the_heads_of_its_pseudonyms(home):
    """A warehouse from before the heads gets the columns and the head of every pseudonym it
    holds (dbt reads only the heads); an erased row (no pseudonym) keeps none."""
    customer = "0a" * 32
    with duckdb.connect(str(home.warehouse)) as conn:
        [(db,)] = conn.execute("select current_database()").fetchall()
        conn.execute(_without_heads(DDL).format(db=db))
        conn.execute(
            "insert into pseudo.tickets (institution_code, ticket_id, event_id, event_start, "
            "sold_at, price, status, sector_pseudonym, customer_pseudonym, research_opt_out, "
            "delivery_id, loaded_at) values "
            f"('th_a', 'T1', 'E1', now(), now(), 1, 'sold', '{SECTOR}', '{customer}', false, 'd1', now()), "
            "('th_a', 'T2', 'E1', now(), now(), 1, 'sold', null, null, false, 'd1', now())"
        )  # fmt: skip
        conn.execute(
            f"insert into pseudo.person_record_keys values ('{SECTOR}', 0.5), ('{customer}', 0.75)"
        )
    with work_connection(home):
        pass
    with duckdb.connect(str(home.warehouse), read_only=True) as conn:
        assert conn.execute(
            "select ticket_id, sector_head, customer_head from pseudo.tickets order by 1"
        ).fetchall() == [("T1", SECTOR_HEAD, int("0a" * 16, 16)), ("T2", None, None)]
        assert conn.execute(
            "select person_head from pseudo.person_record_keys order by record_key"
        ).fetchall() == [(SECTOR_HEAD,), (int("0a" * 16, 16),)]
    with work_connection(home):  # the second time there is nothing to do
        pass


def test_a_pseudonym_that_is_not_hex_stops_the_upgrade_without_showing_it(home):
    """The heads are cast from the pseudonyms' text; a value that is not one (a damaged
    warehouse) stops the upgrade with an error that does not quote it, and changes nothing."""
    odd = "not-a-pseudonym-" + "z" * 48
    with duckdb.connect(str(home.warehouse)) as conn:
        [(db,)] = conn.execute("select current_database()").fetchall()
        conn.execute(_without_heads(DDL).format(db=db))
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
    old = (
        _without_heads(DDL)
        .replace("    loaded_at timestamp not null\n    --", "    loaded_at timestamp not null,\n    primary key (institution_code, ticket_id)\n    --")
        .replace("person_key varchar not null,", "person_key varchar primary key,")
    )  # fmt: skip
    assert old.count("primary key (institution_code, ticket_id)") == 1
    with duckdb.connect(str(home.warehouse)) as conn:
        [(db,)] = conn.execute("select current_database()").fetchall()
        conn.execute(old.format(db=db))
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
