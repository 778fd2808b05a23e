import base64
import os
from pathlib import Path

import pytest

from publieksdata.settings import DataHome

TEST_MASTER_KEY = base64.urlsafe_b64encode(b"\x01" * 32).decode()  # the key of `home`


def isolated_home(root: Path, mp: pytest.MonkeyPatch, key_byte: bytes = b"\x01") -> DataHome:
    """A fresh data home at ``root`` with its own master key, keyring, warehouse and Dagster
    instance; every setting that points elsewhere is redirected through ``mp``."""
    mp.setenv("PUBLIEKSDATA_HOME", str(root))
    mp.setenv("PUBLIEKSDATA_MASTER_KEY", base64.urlsafe_b64encode(key_byte * 32).decode())
    mp.setenv("PUBLIEKSDATA_WAREHOUSE", str(root / "warehouse.duckdb"))
    mp.setenv("DAGSTER_HOME", str(root / "dagster"))
    mp.setenv("DBT_LOG_PATH", str(root / "dbt" / "logs"))
    mp.delenv("PUBLIEKSDATA_MASTER_KEY_FILE", raising=False)
    mp.delenv("PUBLIEKSDATA_K", raising=False)
    mp.delenv("PUBLIEKSDATA_INTAKE_WORKERS", raising=False)
    h = DataHome(root)
    h.create()
    from privacy.keyring import create_keyring

    create_keyring(h)
    return h


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DataHome:
    """A fresh data home per test (see isolated_home)."""
    return isolated_home(tmp_path / "home", monkeypatch)


def built_small_sector(root: Path, mp: pytest.MonkeyPatch, key_byte: bytes, seed: int) -> DataHome:
    """An isolated data home with a generated sector of five members over two years, run once
    at the run date 2026-06-01 (the incremental-build tests start from it)."""
    from publieksdata.pipeline import run_job
    from publieksdata.synthetic import generate_sector

    mp.setenv("PUBLIEKSDATA_AS_OF_DATE", "2026-06-01")
    home = isolated_home(root, mp, key_byte)
    generate_sector(home.root, institutions=5, persons=900, years=2, seed=seed)
    run_job(home)
    return home


def write_minimal_sector(home: DataHome) -> None:
    """A registry of two members and a reference set of three PC4 areas."""
    home.registry.write_text(
        "code,name,discipline,pc4\nth_a,Theater A,theater,1011\nmu_b,Museum B,museum,3511\n"
    )
    home.reference_pc4.parent.mkdir(parents=True, exist_ok=True)
    home.reference_pc4.write_text(
        "pc4,gemeente_code,gemeente_naam,provincie,lat,lon,aantal_inwoners\n"
        "1011,GM0363,Amsterdam,Noord-Holland,52.37,4.90,5000\n"
        "1012,GM0363,Amsterdam,Noord-Holland,52.38,4.89,6000\n"
        "3511,GM0344,Utrecht,Utrecht,52.09,5.11,4000\n"
    )


# pseudo.tickets with the full pseudonyms of its heads (kept in pseudo.person_record_keys), for
# tests that compare them with the pseudonyms they compute (a subquery: ``from {TICKETS} t``)
TICKETS_WITH_PSEUDONYMS = """(
    select t.*, s.person_key as sector_pseudonym, c.person_key as customer_pseudonym
    from pseudo.tickets t
    left join pseudo.person_record_keys s on s.person_head = t.sector_head
    left join pseudo.person_record_keys c on c.person_head = t.customer_head
)"""


def label_columns(conn) -> None:
    """A test warehouse written by hand names its persons by labels ("b1", "S_7") in the ticket
    columns sector_pseudonym and customer_pseudonym (which pseudo.tickets no longer has: the
    privacy step keeps heads there): added here, then turned into heads by fixture_heads."""
    from publieksdata.warehouse import LEGACY_HEADS

    for _, source in LEGACY_HEADS["tickets"]:
        conn.execute(f"alter table pseudo.tickets add column {source} varchar")


def fixture_heads(conn) -> None:
    """Heads (``publieksdata.warehouse.pseudonym_head``) for a test warehouse written by hand.

    Its pseudonyms are labels ("b1", "S_7"), not 64 hex digits, so each label's head is its
    64-bit hash: one number per label, the same in every table, as the privacy step makes it.
    The tickets' label columns (label_columns) are dropped after: the heads stand for them.
    """

    from publieksdata.warehouse import HEADS, LEGACY_HEADS

    for table, heads in (*HEADS.items(), *LEGACY_HEADS.items()):
        present = {r[0] for r in conn.execute(f"describe pseudo.{table}").fetchall()}
        heads = [(head, source) for head, source in heads if source in present]
        if not heads:
            continue
        # hash(NULL) is a number: a missing pseudonym has no head
        sets = ", ".join(f"{head} = case when {source} is not null "
                         f"then cast(hash({source}) as uhugeint) end" for head, source in heads)  # fmt: skip
        conn.execute(f"update pseudo.{table} set {sets}")
        if table in LEGACY_HEADS:
            for _, source in heads:
                conn.execute(f"alter table pseudo.{table} drop column {source}")


def heads_out_of_step(conn, schema: str = "pseudo") -> int:
    """Person keys whose head is not ``pseudonym_head`` of their pseudonym, and ticket heads
    whose pseudonym pseudo.person_record_keys does not hold (a head left behind by erasure or
    rotation, or missing): always 0 in a warehouse the pipeline wrote."""
    from publieksdata.warehouse import HEADS, LEGACY_HEADS, pseudonym_head

    out = 0
    for table, heads in HEADS.items():
        wrong = " or ".join(f"{head} is distinct from {pseudonym_head(source)}"
                            for head, source in heads)  # fmt: skip
        out += conn.execute(f"select count(*) from {schema}.{table} where {wrong}").fetchone()[0]
    for head, _ in LEGACY_HEADS["tickets"]:
        out += conn.execute(
            f"select count(*) from {schema}.tickets t where t.{head} is not null and not exists "
            f"(select 1 from {schema}.person_record_keys k where k.person_head = t.{head})"
        ).fetchone()[0]
    return out


def insert_many(conn, sql: str, rows: list[tuple]) -> None:
    """``conn.executemany(sql, rows)`` for ``insert ... values (...)`` in one statement: DuckDB
    runs executemany's statement once per row (about a millisecond each, a commit each outside a
    transaction), so the rows go in as one DataFrame and the values become a select over it."""
    import re

    import pandas as pd

    head, values = re.split(r"\bvalues\s*", sql, maxsplit=1, flags=re.IGNORECASE)
    inner = values.strip()
    assert inner.startswith("(") and inner.endswith(")"), sql
    width = inner.count("?")
    counter = iter(range(width))
    select = re.sub(r"\?", lambda _: f'"c{next(counter)}"', inner[1:-1])
    frame = pd.DataFrame(rows, columns=[f"c{i}" for i in range(width)])
    conn.register("insert_many_rows", frame)
    try:
        conn.execute(f"{head} select {select} from insert_many_rows")
    finally:
        conn.unregister("insert_many_rows")


def deliver(home: DataHome, institution: str, name: str, content: bytes | str) -> Path:
    folder = home.landing / institution
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def all_files(root: Path):
    for dirpath, _, files in os.walk(root):
        for f in files:
            yield Path(dirpath) / f


# The files that take longest (several whole runs of the job each) go first: pytest-xdist hands
# out whole files in collection order (--dist loadfile), and a long file handed out last runs
# alone at the end while the other worker idles. The order of tests within a file is kept.
LONG_FILES = (
    "test_crash_recovery.py",
    "test_incremental_context.py",
    "test_privacy_lifecycle.py",
    "test_incremental.py",
    "test_privacy_attacks.py",
    "test_dbt_run_date.py",
    "test_orchestration.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable
