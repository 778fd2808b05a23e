"""Validation of a typed delivery: Great Expectations per row, DuckDB for whole-file rules.

Great Expectations runs with its pandas engine over bounded chunks streamed
out of DuckDB (its SQL engine does not work on DuckDB), on the non-identifier
columns only. Its results are reduced to (rule, column, count, first row
numbers): unexpected-value lists are never kept, so no value of any column,
identifier or not, reaches a report.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import duckdb
import pandas as pd
import pyarrow as pa

from ingest.standard import EVENT_REQUIRED, TICKET_REQUIRED

CHUNK_ROWS = 500_000  # GE costs ~0.03 s per frame beside ~0.15 s per million rows
ROW_CAP = 20  # row numbers named per problem
# a rule checked on a column GE derives names the delivery's own column in the report:
# days_past_two_years is how far sold_at lies more than two years before event_start
REPORTED_COLUMN = {"days_past_two_years": "sold_at"}

log = logging.getLogger(__name__)

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TQDM_DISABLE", "1")
# GE's INFO lines (a temporary docs folder per context, functions it skips while importing) are
# noise on the console of `publieksdata run` and in Dagster's logs; its warnings still show
logging.getLogger("great_expectations").setLevel(logging.WARNING)


@dataclass
class Problem:
    rule: str
    column: str | None
    count: int
    rows: list[int]
    fix: str

    def as_dict(self) -> dict:
        return {"rule": self.rule, "column": self.column, "count": self.count,
                "rows": self.rows, "fix": self.fix}  # fmt: skip


@dataclass
class Validation:
    problems: list[Problem] = field(default_factory=list)
    soft: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


FIXES = {
    "required_column": "add the column to the export (names are case-insensitive; Dutch names are accepted)",
    "required_value": "fill in the value in every row, in a format the standard accepts",
    "price_range": "prices are in euros, from 0 up to 10,000",
    "event_start_range": "event dates must lie between 1990 and three years from now",
    "lead_time": "sold_at may lie at most two years before the event",
    "status_value": "status must be sold, cancelled or refunded (verkocht, geannuleerd, terugbetaald)",
    "capacity_value": "capacity must be a whole number above 0, or empty",
    "duplicate_ticket_id": "each ticket_id may appear only once in a delivery",
    "duplicate_event_id": "each event_id may appear only once in an events delivery",
}


def _suite_definitions(kind: str, today: date) -> list[tuple[str, str, str, dict]]:
    """(rule, expectation class, column, kwargs) per expectation of the kind's suite."""
    horizon = int(date(today.year + 3, today.month, min(today.day, 28)).strftime("%Y%m%d"))
    if kind == "tickets":
        exps = [("required_value", "ExpectColumnValuesToNotBeNull", col, {})
                for col in (*TICKET_REQUIRED, "status")]  # fmt: skip
        exps[-1] = ("status_value", "ExpectColumnValuesToNotBeNull", "status", {})
        exps += [
            ("price_range", "ExpectColumnValuesToBeBetween", "price",
             {"min_value": 0, "max_value": 10_000}),
            ("event_start_range", "ExpectColumnValuesToBeBetween", "event_start",
             {"min_value": 19900101, "max_value": horizon}),
            ("lead_time", "ExpectColumnValuesToBeBetween", "days_past_two_years",
             {"max_value": 0}),
        ]  # fmt: skip
        return exps
    exps = [("required_value", "ExpectColumnValuesToNotBeNull", col, {}) for col in EVENT_REQUIRED]
    exps += [
        ("event_start_range", "ExpectColumnValuesToBeBetween", "starts_at",
         {"min_value": 19900101, "max_value": horizon}),
        ("capacity_value", "ExpectColumnValuesToBeBetween", "capacity", {"min_value": 1}),
    ]  # fmt: skip
    return exps


@lru_cache(maxsize=4)
def _ge_batch_definition_and_suite(kind: str, today: date):
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    # GE fingerprints every pandas batch under HASH_THRESHOLD bytes (an md5 over pandas' hash
    # of every row and the index) for a batch marker that nothing here reads: 0.10 of the
    # 0.17 CPU s that a 500,000-row frame's validation took. Off: no frame is hashed
    # (docs/performance.md, twenty-fifth round; tests/test_intake.py checks it stays off).
    pandas_execution_engine.HASH_THRESHOLD = 0

    # this module of GE sets its own logger to INFO when imported (a temporary docs folder per
    # context): quieted after the import
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas(f"delivery_{kind}").add_dataframe_asset(kind)
    batch_definition = asset.add_batch_definition_whole_dataframe("chunk")
    suite = context.suites.add(gx.ExpectationSuite(name=f"delivery_{kind}_v1"))
    for rule, cls, column, kwargs in _suite_definitions(kind, today):
        exp = getattr(gxe, cls)(column=column, **kwargs)
        exp.meta = {"rule": rule}
        suite.add_expectation(exp)
    return batch_definition, suite


def _ymd(column: str) -> str:
    """A timestamp as the integer yyyymmdd (bigint: GE's pandas engine compares int64 and
    float64 columns vectorised, any other dtype value by value in Python). Arithmetic, not
    strftime and a cast: 0.06 s against 0.49 s per 10M values on one core."""
    return f"year({column}) * 10000 + month({column}) * 100 + day({column}) as {column}"


def _given(column: str) -> str:
    """Only whether a value is there: 1 or NULL. GE checks presence; no value leaves DuckDB."""
    return f"case when {column} is not null then 1 end as {column}"


def _ge_frame_sql(kind: str, table: str) -> str:
    """The rows GE sees: rule columns only, identifiers reduced to present/absent, dates as
    yyyymmdd integers."""
    if kind == "tickets":
        return (
            f"select rowid + 1 as _row, {_given('ticket_id')}, {_given('order_id')}, {_given('event_id')}, "
            f"{_ymd('event_start')}, {_ymd('sold_at')}, cast(price as double) as price, "
            f"{_given('status')}, "
            # "more than two years before the event": the days from two years after the sale
            # to the event (a count of days, 731 or 730, was a day off across a leap year)
            "date_diff('day', sold_at + interval 2 year, event_start) as days_past_two_years "
            f"from {table}"
        )
    return (
        f"select rowid + 1 as _row, {_given('event_id')}, {_ymd('starts_at')}, {_given('discipline')}, "
        "case when not capacity_given then 1 when capacity is null then 0 "
        f"else cast(capacity as bigint) end as capacity from {table}"
    )


_ROW_BASE = 10**12  # GE's index: file number * _ROW_BASE + row number


def warm_up(today: date) -> threading.Thread:
    """Import Great Expectations and build both suites on a thread of their own, now.

    The import takes ~2.6 s of one core (scipy.stats, altair, sqlalchemy: GE's own imports).
    Paid at a worker's first validation, it stalled that worker while the other had little to
    do; started before the uploads are sealed (which use about one core), it runs beside them
    (docs/performance.md, twenty-second round). A failure here is left for the first
    validation to raise, where it names the delivery being validated."""

    def build() -> None:
        try:
            with GE_LOCK:
                for kind in ("tickets", "events"):
                    _ge_batch_definition_and_suite(kind, today)
        except Exception:  # noqa: BLE001 - raised again, in context, by run_expectations
            log.debug("warming up Great Expectations failed; the first validation retries")

    thread = threading.Thread(target=build, name="ge_warm_up", daemon=True)
    thread.start()
    return thread


# Great Expectations is not known to be thread-safe (its contexts and metric caches are shared
# objects): intake's workers validate one frame at a time, while the others parse in DuckDB.
GE_LOCK = threading.Lock()


def run_expectations(
    conn: duckdb.DuckDBPyConnection, kind: str, tables: list[str], today: date
) -> list[list[Problem]]:
    """Great Expectations over the typed tables of one or more deliveries of one kind.

    Small deliveries are validated together, in chunks of at most CHUNK_ROWS rows: a GE
    validation has a fixed cost of a few tenths of a second, which a night of hundreds of
    small files would otherwise pay per file. The index of a row names its file and row
    number, so every problem is counted per delivery. Returns the problems per table.
    """
    with GE_LOCK:
        batch_definition, suite = _ge_batch_definition_and_suite(kind, today)
    found: list[dict[tuple[str, str], Problem]] = [{} for _ in tables]
    union = " union all ".join(
        f"select cast({i} as bigint) * {_ROW_BASE} + _row as _key, * exclude (_row) "
        f"from ({_ge_frame_sql(kind, t)})"
        for i, t in enumerate(tables)
    )
    reader = conn.sql(union).to_arrow_reader(CHUNK_ROWS)
    for frame in _frames(reader):
        with GE_LOCK:
            result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
                suite, result_format={"result_format": "COMPLETE"}
            )
        for res in result.results:
            if res.success:
                continue
            cfg = res.expectation_config
            rule = (cfg.meta or {}).get("rule", cfg.type)
            column = REPORTED_COLUMN.get(cfg.kwargs.get("column"), cfg.kwargs.get("column"))
            info = res.result or {}
            if info.get("unexpected_count") is None:
                # the engine itself failed: a defect of ours, never the member's; no values shown
                raise RuntimeError(f"validation of rule {rule} on column {column} did not run")
            per_file: dict[int, list[int]] = {}
            for entry in info.get("unexpected_index_list") or []:
                key = _row_number(entry)
                per_file.setdefault(key // _ROW_BASE, []).append(key % _ROW_BASE)
            for i, rows in per_file.items():
                problem = found[i].setdefault(
                    (rule, column), Problem(rule, column, 0, [], FIXES[rule])
                )
                problem.count += len(rows)
                problem.rows = sorted(problem.rows + sorted(rows)[:ROW_CAP])[:ROW_CAP]
            del info  # the result also lists the unexpected values: dropped with it
    return [list(f.values()) for f in found]


def _frames(reader: pa.RecordBatchReader) -> Iterator[pd.DataFrame]:
    """Frames of about CHUNK_ROWS rows (DuckDB ends a batch at every file of the union)."""
    held: list[pa.RecordBatch] = []
    size = 0
    for batch in reader:
        held.append(batch)
        size += batch.num_rows
        if size >= CHUNK_ROWS:
            yield pa.Table.from_batches(held).to_pandas().set_index("_key")
            held, size = [], 0
    if held:
        yield pa.Table.from_batches(held).to_pandas().set_index("_key")


def _row_number(entry) -> int:
    """GE gives an index entry as a number, or as a dict of index name and column value:
    keep only the index (the value is dropped here, never stored)."""
    return int(entry["_key"] if isinstance(entry, dict) else entry)


def _duplicates(conn: duckdb.DuckDBPyConnection, table: str, column: str, rule: str
                ) -> Problem | None:  # fmt: skip
    # nearly every file has none: a distinct count answers that without a window per row
    [(repeated,)] = conn.execute(
        f"select count({column}) - count(distinct {column}) from {table}"
    ).fetchall()
    if not repeated:
        return None
    count, rows = conn.execute(
        f"""
        with d as (
            select rowid + 1 as _row, count(*) over (partition by {column}) as n from {table}
            where {column} is not null
        )
        select count(*), list(_row order by _row)[1:{ROW_CAP}] from d where n > 1
        """
    ).fetchall()[0]
    return Problem(rule, column, int(count), list(rows or []), FIXES[rule]) if count else None


def check_whole_file(
    conn: duckdb.DuckDBPyConnection, kind: str, columns: list[str], table: str = "typed"
) -> Validation:
    """The rules of delivery-standard.md that need no Great Expectations: required columns,
    unique ids (over the whole file, in DuckDB), and the soft counts."""
    v = Validation()
    required = TICKET_REQUIRED if kind == "tickets" else EVENT_REQUIRED
    missing = [c for c in required if c not in columns]
    for col in missing:
        v.problems.append(Problem("required_column", col, 0, [], FIXES["required_column"]))
    if missing:
        return v
    dup = _duplicates(conn, table, "ticket_id" if kind == "tickets" else "event_id",
                      "duplicate_ticket_id" if kind == "tickets" else "duplicate_event_id")  # fmt: skip
    if dup:
        v.problems.append(dup)
    soft_columns = (
        ["ticket_type_unknown", "channel_unknown", "birth_date_unparseable",
         "research_opt_out_unknown"]
        if kind == "tickets" else ["discipline_unknown", "text_truncated"]
    )  # fmt: skip
    counts = conn.execute(
        "select "
        + ", ".join(f"count(*) filter (where {c})" for c in soft_columns)
        + f" from {table}"
    ).fetchall()[0]
    v.soft = {c: int(n) for c, n in zip(soft_columns, counts, strict=True) if n}
    return v


def validate_typed(
    conn: duckdb.DuckDBPyConnection, kind: str, columns: list[str], today: date | None = None,
    table: str = "typed",
) -> Validation:  # fmt: skip
    """All hard rules and soft counts of delivery-standard.md for one typed delivery."""
    v = check_whole_file(conn, kind, columns, table)
    if any(p.rule == "required_column" for p in v.problems):
        return v
    v.problems = run_expectations(conn, kind, [table], today or date.today())[0] + v.problems
    return v
