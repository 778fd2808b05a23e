"""The privacy step: validated deliveries -> pseudonymised rows in the warehouse.

The job runs it inside intake's read (``take_and_pseudonymise``, ``SinglePass``): validated
rows go from the work database to the warehouse in groups, and the sealed original leaves
quarantine once its group is committed. ``pseudonymise_pending`` does the same for deliveries
waiting as sealed canonical files (intake without the single pass, or an older version).

Per group of deliveries, in one transaction: the heads of the pseudonyms joined in (and every
pseudonym new to the warehouse stored once, with its record key for the cell-key perturbation, in
pseudo.person_record_keys), identifiers dropped,
postcode cut to PC4, birth date cut to birth year, rows of erased persons
unlinked (the suppression list meta.erased, privacy/erasure.py), earlier rows
of the same ticket_id (or event_id) replaced, and the ledger marked accepted.
research_opt_out rows get no pseudonym at all. Only after
the commit is the quarantine file deleted; a crash before it leaves the file (and, for a
canonical file, the ledger saying "validated"), and the next run does it again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from ingest import ledger
from ingest.intake import (
    DeliveryOutcome,
    Validated,
    _sql_path,
    canonical_path,
    take_deliveries,
)
from ingest.sealed import sealed_url
from ingest.standard import CANONICAL_COLUMNS
from privacy import keyed_sql
from privacy.erasure import (
    ERASED_CUSTOMER,
    ERASED_SECTOR,
    add_to_suppression_list,
    unlink_erased,
)
from privacy.keyring import Keyring, open_keyring
from privacy.normalise import (
    fallback_identity,
    normalise_customer_id,
    normalise_email,
    normalise_phone,
    split_postcode,
)
from privacy.pseudonymise import add_person_keys, complete_record_keys
from publieksdata.faults import fault_point
from publieksdata.settings import DataHome, PublieksdataError
from publieksdata.warehouse import (
    check_keyring,
    privacy_memory_limit,
    pseudonym_head,
    transaction,
    work_connection,
)

log = logging.getLogger(__name__)

COUNTRY_NAMES = {
    "nederland": "NL", "netherlands": "NL", "the netherlands": "NL", "holland": "NL",
    "belgie": "BE", "belgië": "BE", "belgium": "BE", "duitsland": "DE", "germany": "DE",
    "deutschland": "DE", "frankrijk": "FR", "france": "FR", "verenigd koninkrijk": "GB",
    "united kingdom": "GB", "uk": "GB", "luxemburg": "LU", "luxembourg": "LU",
}  # fmt: skip


@dataclass
class PrivacyOutcome:
    delivery_id: str
    institution: str
    kind: str
    rows: int
    soft: dict[str, int] = field(default_factory=dict)


def _country_sql(expr: str) -> str:
    whens = " ".join(f"when '{k}' then '{v}'" for k, v in COUNTRY_NAMES.items())
    return (
        f"(case when {expr} is null then 'NL' "
        f"when regexp_matches(trim({expr}), '^[A-Za-z]{{2}}$') then upper(trim({expr})) "
        f"else coalesce(case lower(trim({expr})) {whens} end, 'other') end)"
    )


# Ticket rows (several deliveries) pseudonymised in one transaction. Bigger groups pay fewer
# statement rounds, commits and scans of pseudo.tickets, and key a person's identifiers once
# for more of their deliveries: at 10M rows, groups of 2M rows took the step from 55 s to
# 44-45 s against 500,000 (docs/decisions.md, "Scale"); the step's memory limit
# (PUBLIEKSDATA_PRIVACY_MEMORY) bounds what a group holds, past it DuckDB spills.
GROUP_ROWS = 2_000_000
GROUP_DELIVERIES = 200
# In the single pass a group does not wait to be full: it is loaded as soon as the loader is
# free and at least this many rows of the read's next deliveries are validated, and it grows
# towards GROUP_ROWS only while a load runs. The first load starts ~6 s earlier at 10M (while
# the uploads are still being sealed, with a core idle) and the loads keep pace with the
# reads: the single pass 48.0-49.2 s -> 46.3 s (docs/performance.md, "Twenty-seventh round").
GROUP_MIN_ROWS = 300_000


MAPS = (
    "map_email",
    "map_phone",
    "map_fallback",
    "map_customer",
    "map_postcode",
    "unmapped_email",
    "unmapped_phone",
)


def _with_python(conn, table: str, columns: str, slow_sql: str, compute) -> None:
    """Add to ``table`` the rows Python computes for the values SQL left to it.

    ``slow_sql`` selects the (distinct, few) raw values whose shape the SQL fast path does
    not cover; ``compute`` maps one such row to the output row, or None to leave it out.
    """
    rows = [out for row in conn.execute(slow_sql).fetchall() if (out := compute(*row)) is not None]
    if not rows:
        return
    names = [c.strip() for c in columns.split(",")]
    arrow = pa.table({n: pa.array([r[i] for r in rows], pa.string()) for i, n in enumerate(names)})
    conn.register("python_part", arrow)
    try:
        conn.execute(f"insert into {table} ({columns}) select {columns} from python_part")
    finally:
        conn.unregister("python_part")


def _build_maps(conn, keyring: Keyring) -> None:
    """Temp tables raw identifier -> pseudonym for the group in ``d`` (one row per distinct
    raw value that normalises; the rest stay missing and are counted as soft problems).

    Plain shapes are normalised and keyed in SQL (privacy/keyed_sql.py, keys bound as
    parameters); only the values SQL cannot answer go through privacy/normalise.py.
    """
    identified = "from d where not research_opt_out"
    plain = keyed_sql.plain_sql
    # e-mail and phone: SQL answers the plain shapes, Python (full parsers) everything else
    for kind, column, fast, python in (
        ("email", "email", keyed_sql.email_sql, normalise_email),
        ("phone", "phone", keyed_sql.phone_sql, normalise_phone),
    ):
        conn.execute(
            f"create or replace temp table norm_{kind} as select raw, {fast('raw')} as norm "
            f"from (select distinct {column} as raw {identified} and {column} is not null)"
        )
        _with_python(conn, f"norm_{kind}", "raw, norm",
                     f"select raw from norm_{kind} where norm is null",
                     lambda raw, f=python: (raw, n) if (n := f(raw)) is not None else None)  # fmt: skip
    # fallback key: last name + birth date + PC6, all three needed
    conn.execute(
        f"""
        create or replace temp table norm_fallback as
        select last_name, birth_date, postcode,
               case when fast then {keyed_sql.name_sql("last_name")} || '|' || birth_date
                   || '|' || {keyed_sql.pc6_sql("postcode")} end as norm,
               fast
        from (select *, {plain("last_name")} and {plain("postcode")} as fast
              from (select distinct last_name, cast(birth_date as varchar) as birth_date,
                    postcode {identified} and last_name is not null
                    and birth_date is not null and postcode is not null))
        """
    )
    _with_python(conn, "norm_fallback", "last_name, birth_date, postcode, norm",
                 "select last_name, birth_date, postcode from norm_fallback where not fast",
                 lambda n, b, p: (n, b, p, i) if (i := fallback_identity(n, b, p)) else None)  # fmt: skip
    # customer numbers: institution-scoped
    conn.execute(
        f"""
        create or replace temp table norm_customer as
        select institution_code, raw,
               case when fast then {keyed_sql.customer_id_sql("raw")} end as norm, fast
        from (select *, {plain("raw")} as fast
              from (select distinct institution_code, customer_id as raw {identified}
                    and customer_id is not null))
        """
    )
    _with_python(conn, "norm_customer", "institution_code, raw, norm",
                 "select institution_code, raw from norm_customer where not fast",
                 lambda i, r: (i, r, n) if (n := normalise_customer_id(r)) is not None else None)  # fmt: skip
    # PC4 by the same normalisation as the fallback key's PC6 (privacy/normalise.py: NFKC, any
    # whitespace, zero-width characters), so "1011\u00a0AB" gives both or neither
    conn.execute(
        f"""
        create or replace temp table map_postcode as
        select raw, {keyed_sql.pc4_sql("raw")} as pc4
        from (select distinct postcode as raw from d where postcode is not null)
        where {plain("raw")}
        """
    )
    _with_python(conn, "map_postcode", "raw, pc4",
                 f"select distinct postcode from d where postcode is not null "
                 f"and not {plain('postcode')}",
                 lambda raw: (raw, split_postcode(raw)[0]))  # fmt: skip
    # the pseudonyms, keyed in SQL with the keys bound as parameters
    sector = keyring.chain("sector")
    institution = keyring.chain("institution")
    for table, columns, keys, kind, kind_sql in (
        ("email", "raw", sector, "email", None),
        ("phone", "raw", sector, "phone", None),
        ("fallback", "last_name, birth_date, postcode", sector, "fallback", None),
        ("customer", "institution_code, raw", institution, "", "'customer:' || institution_code"),
    ):
        params = keyed_sql.KeyParams()
        pseudonym = params.chained_hmac_sql(keys, kind, "norm", kind_sql=kind_sql)
        keyed_sql.execute_keyed(
            conn,
            f"create or replace temp table map_{table} as select *, "
            f"{pseudonym_head('pseudonym')} as head from (select {columns}, {pseudonym} "
            f"as pseudonym from norm_{table} where norm is not null)",
            params,
            "keying identifiers",
        )
    for kind in ("email", "phone"):  # the values neither SQL nor Python could normalise
        conn.execute(f"create or replace temp table unmapped_{kind} as select raw "
                     f"from norm_{kind} group by raw having count(norm) = 0")  # fmt: skip
    conn.execute("drop table norm_email; drop table norm_phone; drop table norm_fallback; "
                 "drop table norm_customer")  # fmt: skip


def _pseudonymise_tickets(conn, keyring: Keyring) -> dict[str, dict[str, int]]:
    """Insert the deliveries in ``d`` (column ``_seq``: their order) into wh.pseudo.tickets, in
    the open transaction; return the soft counts per delivery.

    Pseudonyms are computed once per distinct value of the whole group; a ticket delivered
    twice within the group keeps the later delivery's row, as across groups.
    """
    country = _country_sql("d.country")
    try:
        _build_maps(conn, keyring)
        # unparseable e-mail addresses and phone numbers (distinct values) per delivery: only
        # the rows holding one of the few values no rule could parse are counted
        counted = " union all ".join(
            f"select delivery_id, '{kind}_unparseable', count(distinct {kind}) from d "
            f"where not research_opt_out and {kind} in (select raw from unmapped_{kind}) "
            "group by delivery_id"
            for kind in ("email", "phone")
        )
        soft: dict[str, dict[str, int]] = {}
        for delivery_id, problem, count in conn.execute(counted).fetchall():
            soft.setdefault(delivery_id, {})[problem] = count
        # the deliveries with their pseudonyms joined in and identifiers left out
        keyed = f"""
            select
                d.institution_code, d.delivery_id, d._seq,
                d.ticket_id, d.order_id, d.event_id, d.event_start, d.sold_at, d.price,
                d.ticket_type, d.channel, d.status,
                case when not d.research_opt_out
                     then coalesce(me.pseudonym, mp.pseudonym, mf.pseudonym) end
                    as sector_pseudonym,
                case when not d.research_opt_out then mc.pseudonym end as customer_pseudonym,
                case when not d.research_opt_out
                     then coalesce(me.head, mp.head, mf.head) end as sector_head,
                case when not d.research_opt_out then mc.head end as customer_head,
                case when {country} = 'NL' then mpc.pc4 end as pc4,
                {country} as country,
                year(d.birth_date) as birth_year,
                d.gender,
                d.research_opt_out
            from d
            left join map_email me on me.raw = d.email
            left join map_phone mp on mp.raw = d.phone
            left join map_fallback mf on mf.last_name = d.last_name
                and mf.birth_date = cast(d.birth_date as varchar) and mf.postcode = d.postcode
            left join map_customer mc on mc.institution_code = d.institution_code
                and mc.raw = d.customer_id
            left join map_postcode mpc on mpc.raw = d.postcode
        """
        # a ticket delivered twice within the group: the later delivery's row wins (rare, so
        # checked first rather than paid for with a window over every row). Counted on 64-bit
        # hashes: a ticket twice always shows; a collision (about 1 in 10^7 groups of 2M rows)
        # only sends the group down the general path, which is right for any group
        [(twice,)] = conn.execute(
            "select count(*) - count(distinct hash(institution_code, ticket_id)) from d"
        ).fetchall()
        general = twice or _touches_suppression_list(conn)
        if general:
            # the keyed rows in memory: the suppression list and the later-row rule read them
            conn.execute(f"create or replace temp table keyed as {keyed}")
            if twice:
                conn.execute(
                    "delete from keyed as k where exists (select 1 from keyed as later "
                    "where later.institution_code = k.institution_code "
                    "and later.ticket_id = k.ticket_id and later._seq > k._seq)"
                )
            source = "keyed"
        else:
            # nearly every group: no one on the suppression list, no ticket twice. The join
            # streams straight into the insert (the same rows, no in-memory copy of them)
            conn.execute(
                "create or replace temp view keyed_erased as select *, "
                f"false as erased, false as account_erased from ({keyed})"
            )
            source = "d"
        conn.execute(
            f"delete from wh.pseudo.tickets t where exists (select 1 from {source} k "
            "where k.institution_code = t.institution_code and k.ticket_id = t.ticket_id)"
        )
        if general:
            _keep_erased_persons_out(conn)
        # ``order by _seq``: the rows arrive sorted, so DuckDB appends them as full row groups
        # (its batch insert). A parallel insert of the streamed join leaves each thread's last
        # row group part-filled, and the next checkpoint merges them by rewriting a third of
        # the table: 6-8 s at the step's close at 10M (docs/performance.md, nineteenth round).
        # The order is the group's file order, which the rows had anyway.
        conn.execute(
            """
            insert into wh.pseudo.tickets (
                institution_code, ticket_id, order_id, event_id, event_start, sold_at, price,
                ticket_type, channel, status, pc4, country,
                birth_year, gender, research_opt_out, key_id, delivery_id, loaded_at,
                sector_head, customer_head
            )
            select
                institution_code, ticket_id, order_id, event_id, event_start, sold_at, price,
                ticket_type, channel, status,
                case when not erased then pc4 end,
                case when not erased then country end,
                case when not erased then birth_year end,
                case when erased then 'unknown' else gender end,
                research_opt_out,
                ?, delivery_id, now(),
                case when not erased then sector_head end,
                case when not erased and not account_erased then customer_head end
            from keyed_erased order by _seq
            """,
            [keyring.key_id],
        )
        # the full pseudonyms of the persons new to the warehouse, with their record keys, in
        # the same transaction: the tickets hold only their heads
        _add_person_keys(conn, keyring)
    finally:
        for name in MAPS:
            with contextlib.suppress(duckdb.Error):  # never mask the error that failed
                conn.execute(f"drop table if exists {name}")
    if general:  # on the streamed path no row is erased
        for delivery_id, erased_rows in conn.execute(
            "select delivery_id, count(*) filter (where erased) from keyed_erased group by 1"
        ).fetchall():
            soft.setdefault(delivery_id, {})["erased_person_rows"] = erased_rows
    return soft


def _add_person_keys(conn, keyring: Keyring) -> int:
    """Store the pseudonym behind every head the group's rows (just inserted) brought into the
    warehouse for the first time, with its record key (pseudo.person_record_keys); returns how
    many. The rows' pseudonyms all come from the group's maps; an erased person's rows were
    inserted without heads, so their pseudonyms are not stored again."""
    conn.execute(
        """
        create or replace temp table new_heads as
        with heads as (
            select sector_head as head from wh.pseudo.tickets
            where delivery_id in (select distinct delivery_id from d) and sector_head is not null
            union
            select customer_head from wh.pseudo.tickets
            where delivery_id in (select distinct delivery_id from d) and customer_head is not null
        )
        select head from heads
        where not exists (select 1 from wh.pseudo.person_record_keys k
                          where k.person_head = heads.head)
        """
    )
    try:
        added = add_person_keys(
            conn, keyring,
            "select distinct m.pseudonym, m.head from ("
            + " union all ".join(f"select pseudonym, head from map_{kind}"
                                 for kind in ("email", "phone", "fallback", "customer"))
            + ") as m where m.head in (select head from new_heads)",
        )  # fmt: skip
        # every head of the rows comes from the maps: one without its pseudonym could never be
        # rotated (and rotation's check would stop on it), so the group is not committed
        [(heads,)] = conn.execute("select count(*) from new_heads").fetchall()
        if added != heads:
            raise PublieksdataError(
                f"the privacy step found the pseudonyms of {added} of {heads} new persons; "
                "nothing of this group was loaded. Please report this defect"
            )
        log.info("%s persons new to the warehouse", added)
        return added
    finally:
        with contextlib.suppress(duckdb.Error):  # never mask the error that failed
            conn.execute("drop table if exists new_heads")


def _fill_record_keys(conn, keyring: Keyring) -> None:
    """The record keys an older version's warehouse left to compute (complete_record_keys)."""
    if filled := complete_record_keys(conn, keyring):
        log.info("record keys computed for %s person keys of an older warehouse", filled)


def _touches_suppression_list(conn) -> bool:
    """Whether any pseudonym of the group (its maps) is on the suppression list (meta.erased).

    If none is, no row of the group can belong to an erased person or carry an erased
    account: every row's pseudonyms come from these maps.
    """
    [(found,)] = conn.execute(
        f"""
        select exists (
            select 1 from (select pseudonym from map_email union all select pseudonym
                           from map_phone union all select pseudonym from map_fallback)
            where pseudonym in {ERASED_SECTOR}
        ) or exists (select 1 from map_customer where pseudonym in {ERASED_CUSTOMER})
        """
    ).fetchall()
    return found


def _keep_erased_persons_out(conn) -> int:
    """Apply the suppression list (meta.erased) to the delivery in ``keyed``; rows affected.

    A customer account seen in this delivery with an erased sector pseudonym is the erased
    person's account at this member: it joins the list, and earlier rows of that account in
    the warehouse are unlinked too, so a later delivery with only the customer number cannot
    bring the person back. The view ``keyed_erased`` flags each row (privacy/erasure.py has
    the rule).
    """
    accounts = {
        r[0]
        for r in conn.execute(
            "select distinct customer_pseudonym from keyed where customer_pseudonym is not null "
            f"and sector_pseudonym in {ERASED_SECTOR}"
        ).fetchall()
    }
    if add_to_suppression_list(conn, "customer", accounts):
        unlink_erased(conn)
    conn.execute(
        f"""
        create or replace temp view keyed_erased as
        select
            keyed.*,
            coalesce(
                es.pseudonym is not null or (keyed.sector_pseudonym is null and ec.pseudonym is not null),
                false
            ) as erased,
            ec.pseudonym is not null as account_erased
        from keyed
        left join {ERASED_SECTOR} es
            on es.pseudonym = keyed.sector_pseudonym
        left join {ERASED_CUSTOMER} ec
            on ec.pseudonym = keyed.customer_pseudonym
        """
    )
    return conn.execute("select count(*) from keyed_erased where erased").fetchone()[0]


def _pseudonymise_events(conn, institution: str, delivery_id: str) -> None:
    """Insert the events delivery in ``d`` into wh.pseudo.events, in the open transaction."""
    conn.execute(
        "delete from wh.pseudo.events where institution_code = ? "
        "and event_id in (select event_id from d)",
        [institution],
    )
    conn.execute(
        """
        insert into wh.pseudo.events
        select ?, event_id, starts_at, discipline, event_name, venue, capacity, ?, now()
        from d
        """,
        [institution, delivery_id],
    )


def _with_privacy_soft(intake_soft: dict, soft: dict[str, int]) -> dict:
    """Intake's soft problems of a delivery, with the privacy step's counts that are not 0."""
    return {**intake_soft, **{k: v for k, v in soft.items() if v}}


def _mark_accepted(conn, delivery_id: str, rows: int, soft: dict[str, int]) -> None:
    found = conn.execute(
        "select soft_problems from wh.intake.deliveries where delivery_id = ?", [delivery_id]
    ).fetchall()
    merged = _with_privacy_soft(json.loads(found[0][0]) if found and found[0][0] else {}, soft)
    conn.execute(
        "update wh.intake.deliveries set status = 'accepted', rows_loaded = ?, "
        "soft_problems = ?, finished_at = now() where delivery_id = ?",
        [rows, json.dumps(merged), delivery_id],
    )


def _load_group(conn, keyring: Keyring, group: list[tuple[str, str, str]], paths: list[Path],
                mark: Callable[[str, int, dict[str, int]], None]) -> list[PrivacyOutcome]:  # fmt: skip
    """Pseudonymise the group of deliveries (delivery_id, institution, kind) whose rows are in
    ``d`` (columns ``_seq``, ``delivery_id``, ``institution_code`` and the canonical ones),
    in one transaction with ``mark`` (the ledger: accepted); then delete their quarantine
    files ``paths``.
    """
    rows = dict(conn.execute("select delivery_id, count(*) from d group by 1").fetchall())
    # intake never validates an empty file: a delivery without rows here would be a file
    # the read did not match, whose rows must not be lost unnoticed
    if lost := [delivery_id for delivery_id, _, _ in group if not rows.get(delivery_id)]:
        raise PublieksdataError(
            f"the privacy step read no rows of delivery {lost[0]}; nothing was loaded. "
            "Please report this defect"
        )
    kind = group[0][2]
    # on an error the temporary tables of the group go with the transaction, and the
    # error reported is the one that failed (no cleanup statement may mask it)
    with transaction(conn):
        if kind == "tickets":
            soft = _pseudonymise_tickets(conn, keyring)
        else:
            _pseudonymise_events(conn, group[0][1], group[0][0])
            soft = {}
        for delivery_id, _, _ in group:
            mark(delivery_id, rows.get(delivery_id, 0), soft.get(delivery_id, {}))
    conn.execute("drop view if exists keyed_erased; drop table if exists keyed")
    fault_point("privacy.after_commit")
    outcomes = []
    for (delivery_id, institution, kind), path in zip(group, paths, strict=True):
        path.unlink()
        n = rows.get(delivery_id, 0)
        log.info("delivery %s of %s pseudonymised: %s rows", delivery_id, institution, n)
        outcomes.append(PrivacyOutcome(delivery_id, institution, kind, n,
                                       soft.get(delivery_id, {})))  # fmt: skip
        fault_point("privacy.after_delivery")
    return outcomes


def _lit(text: str) -> str:
    """A delivery id or institution code (our own safe names) as a SQL literal."""
    return "'" + text.replace("'", "''") + "'"


def _groups(pending: list[tuple[str, str, str]], sizes: dict[str, int]) -> list[list[tuple]]:
    """Pending deliveries in order, ticket deliveries grouped (GROUP_ROWS, GROUP_DELIVERIES);
    an events delivery is a group of its own."""
    groups: list[list[tuple]] = []
    current: list[tuple] = []
    for item in pending:
        if item[2] != "tickets":
            groups.append([item])
            continue
        if current and (len(current) >= GROUP_DELIVERIES
                        or sum(sizes[i[0]] for i in current) + sizes[item[0]] > GROUP_ROWS):  # fmt: skip
            groups.append(current)
            current = []
        current.append(item)
    if current:
        groups.append(current)
    return groups


def pseudonymise_pending(home: DataHome) -> list[PrivacyOutcome]:
    """Pseudonymise every validated delivery waiting in quarantine, oldest first.

    Ticket deliveries go in groups (up to GROUP_ROWS rows): one transaction per group, so a
    night of hundreds of small files does not pay hundreds of commits and statement rounds.
    A crash loses nothing: a group is committed whole (its deliveries' rows and their ledger
    status together), and its quarantine files are deleted only after the commit.
    """
    keyring = open_keyring(home)
    outcomes = []
    with work_connection(home, keyring.derive("file"), privacy_memory_limit()) as conn:
        check_keyring(conn, keyring.key_id, keyring.fingerprint)
        pending = ledger.pending(conn)
        sizes = dict(conn.execute(
            "select delivery_id, coalesce(rows_total, 0) from wh.intake.deliveries "
            "where status = 'validated'").fetchall())  # fmt: skip
        for group in _groups(pending, sizes):
            paths = []
            for delivery_id, institution, _ in group:
                path = canonical_path(home, institution, delivery_id)
                if not path.is_file():
                    raise PublieksdataError(
                        f"delivery {delivery_id} of {institution} is validated but its "
                        "quarantine file is missing; ask the member to upload it again"
                    )
                paths.append(path)
            # read (and decrypt) the deliveries once, in one scan of all the group's files
            # (DuckDB reads them side by side: half the time of one scan per file, 10M
            # sector); each row gets its delivery by file name. Every query below works on
            # this copy.
            urls = [_lit(_sql_path(sealed_url(path))) for path in paths]
            deliveries = " union all ".join(
                f"select {seq} as _seq, {_lit(delivery_id)} as delivery_id, "
                f"{_lit(institution)} as institution_code, {url} as _file"
                for seq, ((delivery_id, institution, _), url) in enumerate(
                    zip(group, urls, strict=True)
                )
            )
            conn.execute(
                "create or replace temp table d as "
                "select m._seq, m.delivery_id, m.institution_code, f.* exclude (filename) "
                f"from read_parquet([{', '.join(urls)}], union_by_name = true, filename = true) f "
                f"join ({deliveries}) m on m._file = f.filename"
            )
            outcomes += _load_group(
                conn, keyring, group, paths,
                lambda delivery_id, n, soft: _mark_accepted(conn, delivery_id, n, soft),
            )  # fmt: skip
            conn.execute("drop table d")
        # the record keys a warehouse of an older version left missing (each group stores its
        # new persons' keys itself): the next run always gets here before dbt builds
        with transaction(conn):
            _fill_record_keys(conn, keyring)
    return outcomes


class SinglePass:
    """The privacy step inside intake's read: validated deliveries pseudonymised from the work
    database, no canonical file between (ingest/intake.py, ``take_deliveries``).

    Intake's workers settle the deliveries of a read in any order; they are loaded in the
    read's order (so of a ticket delivered twice, the later file's row wins, as in
    ``pseudonymise_pending``), in groups of GROUP_MIN_ROWS to GROUP_ROWS rows. The worker whose
    delivery completes a group loads it, on the loader's own connection, while the others read on;
    ``close`` loads the rest. A group is one transaction: its rows, and its deliveries in the
    ledger (accepted, with intake's soft counts). Only after the commit are their sealed
    originals deleted from quarantine: a crash before leaves them there and the next run
    reads them again, a crash after finds them in the ledger and only deletes them.
    The ledger's lock is held during a load, so a worker recording a rejection waits for the
    commit instead of writing the ledger beside an open transaction.
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection, keyring: Keyring,
                 orders: list[int] | None = None):  # fmt: skip
        self.conn = conn.cursor()
        self.keyring = keyring
        check_keyring(self.conn, keyring.key_id, keyring.fingerprint)
        # the read's deliveries, in its order: given whole, or one by one as intake hands
        # them to its workers (``expect``), until ``expect_no_more``
        self.orders = list(orders or [])
        self.complete = orders is not None
        self.next = 0  # orders[:next] are loaded (or were not validated)
        self.settled: dict[int, Validated | None] = {}  # decided; None: nothing (more) to load
        self.outcomes: list[PrivacyOutcome] = []
        self.pending = True  # until close says otherwise: deliveries waiting as canonical files
        self.broken = False  # a load failed (its error is raised by the worker that tried it)
        self._state = threading.Lock()
        self._loading = threading.Lock()

    def expect(self, order: int) -> None:
        with self._state:
            self.orders.append(order)

    def expect_no_more(self) -> None:
        with self._state:
            self.complete = True

    def settle(self, order: int, validated: Validated | None = None) -> None:
        with self._state:
            self.settled[order] = validated
        if self._loading.acquire(blocking=False):  # else the loading worker finds it
            try:
                self._load_ready(final=False)
            finally:
                self._loading.release()

    def _load_ready(self, final: bool) -> None:
        if self.broken:  # a load failed: its error ends the read; never try the group again
            return
        while (group := self._next_group(final)) is not None:
            try:
                self._load(group)
            except BaseException:
                self.broken = True
                raise
            with self._state:
                for item in group:
                    self.settled[item.order] = None  # its rows are gone: only "decided" stays
                while self.next < len(self.orders) and self.orders[self.next] in self.settled \
                        and self.settled[self.orders[self.next]] is None:  # fmt: skip
                    self.next += 1

    def close(self) -> None:
        """Load the rest; then any record keys an older version's warehouse left missing, on
        this connection (the same work as ``pseudonymise_pending``'s last step, without opening
        the warehouse again), and note whether the ledger still has deliveries waiting as
        canonical files."""
        with self._loading:
            self._load_ready(final=True)
        if self.broken:
            raise PublieksdataError("the privacy step failed on a group of this read; nothing "
                                    "after it was loaded")  # fmt: skip
        if any(self.settled.get(order, True) is not None for order in self.orders):
            raise PublieksdataError("intake ended with deliveries not decided; please report "
                                    "this defect")  # fmt: skip
        with transaction(self.conn):
            _fill_record_keys(self.conn, self.keyring)
        self.pending = bool(ledger.pending(self.conn))
        self.conn.close()

    def _next_group(self, final: bool) -> list[Validated] | None:
        """The next group to load from the settled start of the read, or None.

        Ticket deliveries are grouped in the read's order; an events delivery is a group of its
        own, loaded as soon as the events before it are (events and tickets are separate
        tables, so a ticket group runs on past it, as in ``_groups``). A ticket group still
        open at the first delivery not yet decided waits for more, unless ``final`` or it
        holds GROUP_MIN_ROWS rows already. Only a free loader asks (``settle`` when it gets
        the loading lock, or the loading worker after a load), so a group grows past
        GROUP_MIN_ROWS only while a load runs: the groups follow the loads' pace.
        """
        with self._state:
            group: list[Validated] = []
            rows = 0
            for order in self.orders[self.next :]:
                if order not in self.settled:  # the group may still grow, unless it is
                    return group if self._ready(group, rows, final) else None  # due now
                item = self.settled[order]
                if item is None:  # rejected, duplicate, or loaded already
                    continue
                if item.kind != "tickets":
                    return [item]
                if group and (len(group) >= GROUP_DELIVERIES or rows + item.rows > GROUP_ROWS):
                    return group
                group.append(item)
                rows += item.rows
            if not self.complete:  # more deliveries may follow: the group may still grow
                return group if self._ready(group, rows, final) else None
            return group or None  # the read's last deliveries

    @staticmethod
    def _ready(group: list[Validated], rows: int, final: bool) -> bool:
        """Whether a group that could still grow is loaded now: at the end of the read, or
        when it holds GROUP_MIN_ROWS rows (the loader is free whenever it asks)."""
        return bool(group) and (final or rows >= GROUP_MIN_ROWS)

    def _load(self, group: list[Validated]) -> None:
        conn = self.conn
        kind = group[0].kind
        columns = ", ".join(CANONICAL_COLUMNS[kind])
        conn.execute(
            "create or replace temp view d as "
            + " union all ".join(
                f"select {seq} as _seq, {_lit(v.base['delivery_id'])} as delivery_id, "
                f"{_lit(v.base['institution_code'])} as institution_code, {columns} "
                f"from {v.table}"
                for seq, v in enumerate(group)
            )
        )
        by_id = {v.base["delivery_id"]: v for v in group}

        def mark(delivery_id: str, n: int, soft: dict[str, int]) -> None:
            v = by_id[delivery_id]
            ledger.insert(conn, status="accepted", rows_loaded=n,
                          soft_problems=_with_privacy_soft(v.soft, soft), **v.base)  # fmt: skip

        try:
            with ledger.WRITE:
                self.outcomes += _load_group(
                    conn, self.keyring,
                    [(v.base["delivery_id"], v.base["institution_code"], v.kind) for v in group],
                    [v.path for v in group], mark,
                )  # fmt: skip
        finally:
            conn.execute("drop view if exists d")
        for v in group:
            conn.execute(f"drop table if exists {v.table}")
        # the group's rows written into the warehouse file now, while the read goes on: left
        # to the close (checkpoint_threshold, publieksdata/warehouse.py), the whole night's
        # were one checkpoint of ~1.6 s on one core after the last load (docs/performance.md,
        # twenty-eighth round). A crash in between loses nothing: the log is replayed.
        try:
            conn.execute("checkpoint wh")
        except duckdb.TransactionException:
            pass  # not now: the next group's checkpoint, or the close, writes them


def take_and_pseudonymise(
    home: DataHome, today: date | None = None, only: list[str] | None = None
) -> tuple[list[DeliveryOutcome], list[PrivacyOutcome]]:
    """Intake and the privacy step in one pass (what the job runs): every delivery read once,
    validated, and pseudonymised from memory, with the pseudonyms and record keys of new persons.
    ``pseudonymise_pending`` runs first if an earlier version left deliveries waiting as
    canonical files in quarantine, and after if no delivery was read (it completes the record
    keys an older version's warehouse may lack) or the ledger still has deliveries waiting.

    The work database gets the privacy step's memory limit (PUBLIEKSDATA_PRIVACY_MEMORY):
    it holds the groups being pseudonymised beside the deliveries being read.
    """
    keyring = open_keyring(home)
    loaders: list[SinglePass] = []
    # deliveries an older version left validated (canonical files) are older than tonight's:
    # loaded first, so of a ticket in both, tonight's row wins
    privacy = (pseudonymise_pending(home)
               if any(home.quarantine.glob("*/*.canonical.parquet")) else [])  # fmt: skip

    def single_pass(conn) -> SinglePass:
        loaders.append(SinglePass(conn, keyring))
        return loaders[-1]

    outcomes = take_deliveries(home, today, only, single_pass=single_pass,
                               memory_limit=privacy_memory_limit())  # fmt: skip
    privacy += [o for loader in loaders for o in loader.outcomes]
    if not loaders or any(loader.pending for loader in loaders):
        # no delivery read (the record keys an older version's warehouse may lack), or
        # deliveries an older version left validated: the step that reads canonical files
        privacy += pseudonymise_pending(home)
    return outcomes, privacy
