"""The privacy step: validated deliveries in quarantine -> pseudonymised rows in the warehouse.

Per delivery, in one transaction: pseudonyms joined in, identifiers dropped,
postcode cut to PC4, birth date cut to birth year, rows of erased persons
unlinked (the suppression list meta.erased, privacy/erasure.py), earlier rows
of the same ticket_id (or event_id) replaced, and the ledger marked accepted.
research_opt_out rows get no pseudonym at all. Only after
the commit is the quarantine file deleted; a crash before it leaves the file
and the ledger saying "validated", and the next run does it again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from ingest import ledger
from ingest.intake import _sql_path, canonical_path
from ingest.sealed import sealed_url
from privacy.erasure import add_to_suppression_list, unlink_erased
from privacy.keyring import Keyring, open_keyring
from privacy.pseudonymise import customer_map, email_map, fallback_map, phone_map
from publieksdata.faults import fault_point
from publieksdata.settings import DataHome, PublieksdataError
from publieksdata.warehouse import check_keyring, work_connection

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


def _pseudonymise_tickets(conn, keyring: Keyring, institution: str, delivery_id: str) -> dict:
    """Insert the delivery in ``d`` into wh.pseudo.tickets; return soft counts."""
    identified = "from d where not research_opt_out"
    emails, bad_emails = email_map(
        keyring,
        (
            r[0]
            for r in conn.execute(
                f"select distinct email {identified} and email is not null"
            ).fetchall()
        ),
    )
    phones, bad_phones = phone_map(
        keyring,
        (
            r[0]
            for r in conn.execute(
                f"select distinct phone {identified} and phone is not null"
            ).fetchall()
        ),
    )
    fallbacks = fallback_map(keyring, conn.execute(
        f"select distinct last_name, cast(birth_date as varchar), postcode {identified} "
        "and last_name is not null and birth_date is not null and postcode is not null"
    ).fetchall())  # fmt: skip
    customers = customer_map(keyring, institution, (r[0] for r in conn.execute(
        f"select distinct customer_id {identified} and customer_id is not null").fetchall()))  # fmt: skip
    for name, table in (("map_email", emails), ("map_phone", phones),
                        ("map_fallback", fallbacks), ("map_customer", customers)):  # fmt: skip
        conn.register(name, table)
    country = _country_sql("d.country")
    # the delivery with its pseudonyms joined in and its identifiers left out (in memory)
    conn.execute(
        f"""
        create or replace temp table keyed as
        select
            d.ticket_id, d.order_id, d.event_id, d.event_start, d.sold_at, d.price,
            d.ticket_type, d.channel, d.status,
            case when not d.research_opt_out
                 then coalesce(me.pseudonym, mp.pseudonym, mf.pseudonym) end as sector_pseudonym,
            case when not d.research_opt_out then mc.pseudonym end as customer_pseudonym,
            case when {country} = 'NL' then nullif(regexp_extract(
                upper(replace(d.postcode, ' ', '')), '^([1-9][0-9]{{3}})([A-Z]{{2}})?$', 1), '')
            end as pc4,
            {country} as country,
            year(d.birth_date) as birth_year,
            d.gender,
            d.research_opt_out
        from d
        left join map_email me on me.raw = d.email
        left join map_phone mp on mp.raw = d.phone
        left join map_fallback mf on mf.last_name = d.last_name
            and mf.birth_date = cast(d.birth_date as varchar) and mf.postcode = d.postcode
        left join map_customer mc on mc.raw = d.customer_id
        """
    )
    conn.execute("begin transaction")
    try:
        conn.execute(
            "delete from wh.pseudo.tickets where institution_code = ? "
            "and ticket_id in (select ticket_id from keyed)",
            [institution],
        )
        erased_rows = _keep_erased_persons_out(conn)
        conn.execute(
            """
            insert into wh.pseudo.tickets
            select
                ?, ticket_id, order_id, event_id, event_start, sold_at, price,
                ticket_type, channel, status,
                case when not erased then sector_pseudonym end,
                case when not erased and not account_erased then customer_pseudonym end,
                case when not erased then pc4 end,
                case when not erased then country end,
                case when not erased then birth_year end,
                case when erased then 'unknown' else gender end,
                research_opt_out,
                ?, ?, now()
            from keyed_erased
            """,
            [institution, keyring.key_id, delivery_id],
        )
        soft = {
            "email_unparseable": bad_emails,
            "phone_unparseable": bad_phones,
            "erased_person_rows": erased_rows,
        }
        _mark_accepted(conn, delivery_id, soft)
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    finally:
        for name in ("map_email", "map_phone", "map_fallback", "map_customer"):
            conn.unregister(name)
        conn.execute("drop view if exists keyed_erased; drop table if exists keyed")
    return soft


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
            "and sector_pseudonym in (select pseudonym from wh.meta.erased where kind = 'sector')"
        ).fetchall()
    }
    if add_to_suppression_list(conn, "customer", accounts):
        unlink_erased(conn)
    conn.execute(
        """
        create or replace temp view keyed_erased as
        select
            keyed.*,
            coalesce(
                es.pseudonym is not null or (keyed.sector_pseudonym is null and ec.pseudonym is not null),
                false
            ) as erased,
            ec.pseudonym is not null as account_erased
        from keyed
        left join (select pseudonym from wh.meta.erased where kind = 'sector') es
            on es.pseudonym = keyed.sector_pseudonym
        left join (select pseudonym from wh.meta.erased where kind = 'customer') ec
            on ec.pseudonym = keyed.customer_pseudonym
        """
    )
    return conn.execute("select count(*) from keyed_erased where erased").fetchone()[0]


def _pseudonymise_events(conn, institution: str, delivery_id: str) -> dict:
    conn.execute("begin transaction")
    try:
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
        _mark_accepted(conn, delivery_id, {})
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    return {}


def _mark_accepted(conn, delivery_id: str, soft: dict[str, int]) -> None:
    row = conn.execute(
        "select soft_problems from wh.intake.deliveries where delivery_id = ?", [delivery_id]
    ).fetchone()
    merged = json.loads(row[0]) if row and row[0] else {}
    merged.update({k: v for k, v in soft.items() if v})
    conn.execute(
        "update wh.intake.deliveries set status = 'accepted', rows_loaded = "
        "(select count(*) from d), soft_problems = ?, finished_at = now() where delivery_id = ?",
        [json.dumps(merged), delivery_id],
    )


def pseudonymise_pending(home: DataHome) -> list[PrivacyOutcome]:
    """Pseudonymise every validated delivery waiting in quarantine, oldest first."""
    keyring = open_keyring(home)
    outcomes = []
    with work_connection(home, keyring.derive("file")) as conn:
        check_keyring(conn, keyring.key_id, keyring.fingerprint)
        for delivery_id, institution, kind in ledger.pending(conn):
            path = canonical_path(home, institution, delivery_id)
            if not path.is_file():
                raise PublieksdataError(
                    f"delivery {delivery_id} of {institution} is validated but its quarantine "
                    f"file is missing; ask the member to upload it again"
                )
            conn.execute(
                f"create or replace temp view d as select * from read_parquet('{_sql_path(sealed_url(path))}')"
            )
            if kind == "tickets":
                soft = _pseudonymise_tickets(conn, keyring, institution, delivery_id)
            else:
                soft = _pseudonymise_events(conn, institution, delivery_id)
            rows = conn.execute("select count(*) from d").fetchone()[0]
            conn.execute("drop view d")
            fault_point("privacy.after_commit")
            path.unlink()
            log.info("delivery %s of %s pseudonymised: %s rows", delivery_id, institution, rows)
            outcomes.append(PrivacyOutcome(delivery_id, institution, kind, rows, soft))
    return outcomes
