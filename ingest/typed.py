"""Cast a delivery's text to the standard's types, in DuckDB (one set-based pass).

The source is a delivery's relation (ingest/read.py: the file itself, parsed as it is
typed) or a table of its text such as ``raw``. The typed table stores rows in the source's
order, so ``rowid + 1`` is the data row number. The text values are already trimmed, with
'' as NULL (ingest/read.py): trimming them again here cost a third of this pass. A column a
Parquet delivery already holds in a type that fits (a timestamp for a date column, a number
for the price, a boolean for the opt-out; see ``native_fits``) stays in that type in the
source and is taken as it is: formatting it as text only to parse it back cost half the read
of a Parquet delivery.

Unparseable values become NULL next to their raw text, so validation can tell
"empty" from "unparseable" without ever showing the value.
"""

from __future__ import annotations

from ingest.standard import (
    CHANNELS,
    DATE_FORMATS,
    DISCIPLINE_ALIASES,
    EVENT_COLUMNS,
    FALSE_VALUES,
    GENDERS,
    STATUSES,
    TICKET_COLUMNS,
    TICKET_TYPES,
    TRUE_VALUES,
)

TEXT_LIMIT = 500  # characters kept of a free-text field (event_name, venue); more is cut, counted


_TIMESTAMPS = frozenset({"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "DATE"})
_INTEGERS = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                       "USMALLINT", "UINTEGER", "UBIGINT"})  # fmt: skip
_NUMBERS = _INTEGERS | {"FLOAT", "DOUBLE", "DECIMAL"}
NATIVE = {
    "event_start": _TIMESTAMPS, "sold_at": _TIMESTAMPS, "birth_date": _TIMESTAMPS,
    "starts_at": _TIMESTAMPS, "price": _NUMBERS, "capacity": _NUMBERS,
    "research_opt_out": frozenset({"BOOLEAN"}),
}  # fmt: skip


def native_fits(column: str, duckdb_type: str) -> bool:
    """Whether a delivery's column of this DuckDB type is taken as it is (not as text).

    Timestamps and dates without a time zone for the date columns (a zone would need a rule
    of its own: such columns go through text as before, where they are unparseable), numbers
    for price and capacity, booleans for the research opt-out. Everything else is text.
    """
    return duckdb_type.upper().split("(")[0] in NATIVE.get(column, ())  # DECIMAL(p, s): DECIMAL


def sql_literal(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def _case_map(expr: str, mapping: dict[str, str], default: str) -> str:
    """The code ``mapping`` gives the lower-cased value of ``expr``; ``default`` for any other
    value, NULL for NULL. A MAP literal, looked up once per row: a CASE compared the value with
    every key in turn (per 2M rows 0.10 against 0.29 CPU s for the genders; the bind a third
    cheaper too; docs/performance.md, twenty-fifth round)."""
    entries = ", ".join(f"{sql_literal(k)}: {sql_literal(v)}" for k, v in mapping.items())
    return (
        f"(case when {expr} is null then null "
        f"else coalesce(MAP {{{entries}}}[lower({expr})], {default}) end)"
    )


def _timestamp(expr: str, first: str | None = None, native: bool = False) -> str:
    """A date or datetime in one of the standard's formats, or an Excel serial day number.

    ``first`` is the format most values of the column have (see ``detect_date_formats``):
    it is tried alone first. DuckDB's COALESCE evaluates an argument only for the rows still
    NULL, so the full list (slow: every format that fails costs a parse attempt) runs only
    for the odd value; the result is the same as with the list alone, because no value
    matches two formats of the list.
    """
    if native:  # a timestamp or date column: only an infinite value is unparseable
        return f"(case when isfinite({expr}) then cast({expr} as timestamp) end)"
    formats = ", ".join(sql_literal(f) for f in DATE_FORMATS)
    serial = (
        rf"case when regexp_matches({expr}, '^\d{{5}}(\.\d+)?$') then timestamp '1899-12-30' "
        f"+ to_microseconds(cast(round(cast({expr} as double) * 86400) * 1000000 as bigint)) end"
    )
    fast = f"try_strptime({expr}, {sql_literal(first)}), " if first else ""
    # ISO 8601 with an offset or Z (2025-03-01T19:00:00Z, ...+01:00, a Parquet TIMESTAMP WITH
    # TIME ZONE as text: ...+00): the moment it names, in Europe/Amsterdam time (the standard's
    # times are Amsterdam's); tried last, so a value of the other formats never gets here
    # (one try_strptime per format: with a list of formats DuckDB rolls 30 February over into
    # March where each format alone refuses it)
    utc = f"regexp_replace({expr}, '[Zz]$', '+00:00')"
    zoned = ", ".join(f"try_strptime({utc}, {sql_literal(f)})" for f in ZONED_FORMATS)
    offset = (
        rf"case when regexp_matches({expr}, "
        rf"'([Zz]|[+-]((0\d|1[0-3])(:?(00|15|30|45))?|14(:?00)?))$') "
        f"then timezone('Europe/Amsterdam', coalesce({zoned})) end"
    )
    return f"coalesce({fast}try_strptime({expr}, [{formats}]), {serial}, {offset})"


# ISO 8601 date-times with a UTC offset (%z: +01:00, +0100 or +01; Z is read as +00:00;
# %n: a fraction of 1 to 9 digits, as .NET and Java write them)
ZONED_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%n%z",
    "%Y-%m-%d %H:%M:%S.%n%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d %H:%M%z",
)  # fmt: skip


DATE_COLUMNS = {"tickets": ("event_start", "sold_at", "birth_date"), "events": ("starts_at",)}
_SAMPLE = 64  # given values per column (the first 256 rows took 16 ms a file, 400 files a night)


def detect_date_formats(conn, kind: str, columns: list[str], table: str = "raw",
                        params: list | None = None) -> dict[str, str]:  # fmt: skip
    """Per date column of ``table`` (or a relation in parentheses, with ``params``), the format
    of the standard that parses most of a sample (the column's first _SAMPLE values that are
    not empty).

    Exports use one format per column, so this one format, tried first, parses nearly every
    row at the cost of a single attempt (see ``_timestamp``). It is only a hint: the typed
    pass tries every format for a value the hint does not parse.
    """
    present = [c for c in DATE_COLUMNS[kind] if c in columns]
    if not present:
        return {}
    # the samples of all columns as one column of values, each format tried once in the SQL:
    # a third of the bind of one count per column and format (4.5 -> 3.2 ms a file;
    # docs/performance.md, twenty-fifth round)
    samples = " union all ".join(
        f'select {i} as col, "{c}" as v from '
        f'(select "{c}" from {table} where "{c}" is not null limit {_SAMPLE})'
        for i, c in enumerate(present)
    )
    probes = (
        "select col, "
        + ", ".join(f"count(try_strptime(v, {sql_literal(f)}))" for f in DATE_FORMATS)
        + f" from ({samples}) group by col"
    )
    found: dict[str, str] = {}
    n = len(DATE_FORMATS)
    for i, *per_format in conn.execute(probes, (params or []) * len(present)).fetchall():
        best = max(range(n), key=lambda j: per_format[j])
        if per_format[best]:
            found[present[i]] = DATE_FORMATS[best]
    return found


def date_formats_of(conn, kind: str, columns: list[str], relation) -> dict[str, str]:
    """``detect_date_formats`` over the head of a delivery's relation (``ingest.read.Relation``:
    its first rows, HEAD_ROWS), not over the file: a column with no value that early gets no
    hint (only a hint: every format is still tried)."""
    present = [c for c in DATE_COLUMNS[kind] if c in columns]
    if not present:
        return {}
    return detect_date_formats(conn, kind, present, relation.head(present), relation.head_params)


def _decimal(expr: str, native: bool = False, decimal_point: bool = False) -> str:
    """Decimal with either separator: 12,50 / 1.234,50 / 12.50 / 1,234.50 / EUR 12,50; a
    number column as it is (as text, a price of 1.234 would read as one thousand).

    ``decimal_point``: the file writes decimals with a point (delivery-standard.md: a CSV
    delimited by commas or tabs; only ``;``-files from Dutch Excel use a decimal comma), so a
    number with one point is a decimal whatever its digits: 8.125 is 8.13, not 8,125. Without
    it (``;``-files, XLSX text, Parquet text) 8.125 is a Dutch thousands group.

    Most prices are plain (12.50, 12,50, 12): one match on the value as given decides them, and
    only the rest goes through the full parse (``_decimal_full``) with its currency signs and
    thousands separators. With at most two decimals after its one separator a plain price means
    the same under every rule of the full parse (tests/test_properties.py checks that the two
    agree on any text); about half the CPU of the full parse for such prices."""
    if native:
        return f"try_cast({expr} as decimal(12, 2))"
    return (
        rf"case when regexp_full_match({expr}, '-?\d+([.,]\d{{1,2}})?') "
        f"then try_cast(replace({expr}, ',', '.') as decimal(12, 2)) "
        f"else {_decimal_full(expr, decimal_point)} end"
    )


def _decimal_full(expr: str, decimal_point: bool = False) -> str:
    """``_decimal``'s parse of any text: currency signs and spaces out, then the separators.
    With ``decimal_point`` a comma before three digits groups thousands (1,234 is 1,234), as a
    point does in a file with a decimal comma; a comma before one or two digits is a decimal
    comma in every file (12,50). A thousands group never follows a lone 0 (0,999 is 1.00)."""
    # the euro sign, EUR (any case), spaces and a leading plus sign are no part of the number
    e = f"regexp_replace({expr}, '[€\\s]|(?i:eur)|^\\+', '', 'g')"
    point = rf"when regexp_matches({e}, '^-?\d+\.\d+$') then {e} "
    dot_thousands = (
        rf"when regexp_matches({e}, '^-?[1-9]\d{{0,2}}(\.\d{{3}})+(,\d+)?$') "
        f"then replace(replace({e}, '.', ''), ',', '.') "
    )
    comma_decimal = rf"when regexp_matches({e}, '^-?\d+,\d+$') then replace({e}, ',', '.') "
    comma_thousands = rf"when regexp_matches({e}, '^-?[1-9]\d{{0,2}}(,\d{{3}})+(\.\d+)?$') then replace({e}, ',', '') "
    rules = (
        [point, dot_thousands, comma_thousands, comma_decimal]
        if decimal_point
        else [dot_thousands, comma_decimal, comma_thousands]
    )
    return "try_cast(case " + "".join(rules) + f"else {e} end as decimal(12, 2))"


def _whole(number: str) -> str:
    """An integer where ``number`` (a decimal) is whole, else NULL: 1.200 (Dutch thousands) is
    1200 seats, and 12.7 is no capacity (rejected as capacity_value), not 13."""
    return f"(case when {number} = floor({number}) then cast({number} as integer) end)"


def _col(columns: list[str], name: str) -> str:
    return f'"{name}"' if name in columns else "cast(null as varchar)"


def typed_tickets_sql(
    columns: list[str],
    formats: dict[str, str] | None = None,
    table: str = "typed",
    native: frozenset[str] | set[str] = frozenset(),
    source: str = "raw",
    decimal_point: bool = False,
) -> str:
    """The typed table of a tickets delivery, from ``source`` (a table, or a relation in
    parentheses); ``native``: its columns that are not text (``native_fits``);
    ``decimal_point``: its prices write decimals with a point (``_decimal``). A table of the
    work database's own catalog, not a temporary one: in the single pass (ingest/intake.py)
    the worker that loads a group reads the tables other workers typed."""
    c = {name: _col(columns, name) for name in TICKET_COLUMNS}
    f = formats or {}
    bool_true = ", ".join(sql_literal(v) for v in TRUE_VALUES)
    bool_false = ", ".join(sql_literal(v) for v in FALSE_VALUES)
    opt = c["research_opt_out"]
    if "research_opt_out" in native:
        opt_out, opt_out_unknown = f"coalesce({opt}, false)", "false"
    else:
        # a value that is neither yes nor no counts as an objection (counted as a soft problem):
        # on the safe side, the row is not linked to a person
        opt_out = f"coalesce(lower({opt}) not in ({bool_false}), false)"
        opt_out_unknown = f"{opt} is not null and lower({opt}) not in ({bool_true}, {bool_false})"
    birth = _timestamp(c["birth_date"], f.get("birth_date"), "birth_date" in native)
    return f"""
    create or replace table {table} as
    select
        {c["ticket_id"]} as ticket_id,
        {c["order_id"]} as order_id,
        {c["event_id"]} as event_id,
        {_timestamp(c["event_start"], f.get("event_start"), "event_start" in native)} as event_start,
        {c["event_start"]} is not null as event_start_given,
        {_timestamp(c["sold_at"], f.get("sold_at"), "sold_at" in native)} as sold_at,
        {c["sold_at"]} is not null as sold_at_given,
        {_decimal(c["price"], "price" in native, decimal_point)} as price,
        {c["price"]} is not null as price_given,
        {_case_map(c["ticket_type"], TICKET_TYPES, "'other'")} as ticket_type,
        {c["ticket_type"]} is not null
            and lower({c["ticket_type"]}) not in ({", ".join(sql_literal(k) for k in TICKET_TYPES)})
            as ticket_type_unknown,
        {_case_map(c["channel"], CHANNELS, "'other'")} as channel,
        {c["channel"]} is not null
            and lower({c["channel"]}) not in ({", ".join(sql_literal(k) for k in CHANNELS)})
            as channel_unknown,
        coalesce({_case_map(c["status"], STATUSES, "null")},
                 case when {c["status"]} is null then 'sold' end) as status,
        {c["customer_id"]} as customer_id,
        {c["email"]} as email,
        {c["phone"]} as phone,
        {c["last_name"]} as last_name,
        {c["postcode"]} as postcode,
        {c["country"]} as country,
        cast({birth} as date) as birth_date,
        {c["birth_date"]} is not null and {birth} is null as birth_date_unparseable,
        coalesce({_case_map(c["gender"], GENDERS, "'unknown'")}, 'unknown') as gender,
        {opt_out} as research_opt_out,
        {opt_out_unknown} as research_opt_out_unknown
    from {source}
    """


def typed_events_sql(
    columns: list[str],
    formats: dict[str, str] | None = None,
    table: str = "typed",
    native: frozenset[str] | set[str] = frozenset(),
    source: str = "raw",
) -> str:
    """The typed table of an events delivery (``native``, ``source`` as for
    ``typed_tickets_sql``)."""
    c = {name: _col(columns, name) for name in EVENT_COLUMNS}
    f = formats or {}
    return f"""
    create or replace table {table} as
    select
        {c["event_id"]} as event_id,
        {_timestamp(c["starts_at"], f.get("starts_at"), "starts_at" in native)} as starts_at,
        {c["starts_at"]} is not null as starts_at_given,
        {_case_map(c["discipline"], DISCIPLINE_ALIASES, "'overig'")} as discipline,
        {c["discipline"]} is not null as discipline_given,
        {c["discipline"]} is not null
            and lower({c["discipline"]}) not in
                ({", ".join(sql_literal(k) for k in DISCIPLINE_ALIASES)}) as discipline_unknown,
        left({c["event_name"]}, {TEXT_LIMIT}) as event_name,
        left({c["venue"]}, {TEXT_LIMIT}) as venue,
        coalesce(length({c["event_name"]}) > {TEXT_LIMIT} or length({c["venue"]}) > {TEXT_LIMIT},
                 false) as text_truncated,
        {_whole(_decimal(c["capacity"], "capacity" in native))} as capacity,
        {c["capacity"]} is not null as capacity_given
    from {source}
    """
