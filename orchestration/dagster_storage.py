"""Dagster's own SQLite instance storage, with the event log's connections kept open.

Dagster's SQLite event log opens a new SQLAlchemy engine and a new SQLite connection for every
statement group and closes both after it. Storing one asset event costs it three to six of
those. A run of ``sector_refresh`` stores ~350 events; at its start ~110 "planned" events for
the dbt models and their checks, one after another, before the first step. Measured on this
project's machine (docs/performance.md, thirtieth round): the run's first step started
0.87-1.01 s after the run was launched; with the connections kept, 0.39-0.41 s, and the run's
events took 1.0 s instead of 2.6-3.3 s.

This storage is Dagster's (``DagsterSqliteStorage``): the same files in the same places
(``history/runs.db``, ``history/runs/<run_id>.db`` and ``index.db``, ``schedules/``), the same
transactions, the same locking. Only the event log keeps one engine per database file (the
index and the last few runs) with its connection pooled. So a data home can switch to it and
back, and the UI and the daemon read what it wrote. It uses Dagster's internal classes: the
pin ``dagster>=1.13,<1.14`` in pyproject.toml is what keeps them stable, and
``tests/test_dagster_storage.py`` fails if an upgrade changes them under it.

``orchestration/environment.py`` writes it into a new data home's ``dagster/dagster.yaml``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine

# engines kept per process: the index, the run being written and a few that the UI reads
KEPT_ENGINES = 8


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's run-sharded SQLite event log; each database file's engine is kept and reused
    (at most ``KEPT_ENGINES``, the least recently used one disposed first)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # noqa: D102 - Dagster's hook
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # as Dagster's own: one statement group at a time per storage (its lock), a transaction
        # around each; the connection goes back to the engine's pool instead of being closed
        with self._db_lock:
            engine = self._engine(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                pool_size=1,
                max_overflow=2,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            )
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
        self._engines[shard] = engine  # the most recently used last
        while len(self._engines) > KEPT_ENGINES:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    def _dispose_engines(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self._dispose_engines()  # no open connection to a file that is about to be deleted
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._dispose_engines()


class PublieksdataSqliteStorage(DagsterSqliteStorage):
    """``DagsterSqliteStorage`` with ``PooledSqliteEventLogStorage`` as its event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        # DagsterSqliteStorage.__init__ with the event log swapped (calling it would open
        # Dagster's own event log first)
        self.base_dir = base_dir
        self._run_storage = SqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = PooledSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # noqa: D102 - Dagster's hook
        return cls.from_local(inst_data=inst_data, **config_value)
