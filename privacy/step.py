"""The privacy step: validated deliveries in quarantine -> pseudonymised rows in the warehouse.

Per delivery, in one transaction: pseudonyms joined in, identifiers dropped,
postcode cut to PC4, birth date cut to birth year, earlier rows of the same
ticket_id (or event_id) replaced, and the ledger marked accepted. Only after
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
from privacy.keyring import Keyring, open_keyring
from privacy.pseudonymise import customer_map, email_map, fallback_map, phone_map
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
    conn.execute("begin transaction")
    try:
        conn.execute(
            "delete from wh.pseudo.tickets where institution_code = ? "
            "and ticket_id in (select ticket_id from d)",
            [institution],
        )
        conn.execute(
            f"""
            insert into wh.pseudo.tickets
            select
                ?, d.ticket_id, d.order_id, d.event_id, d.event_start, d.sold_at, d.price,
                d.ticket_type, d.channel, d.status,
                case when not d.research_opt_out
                     then coalesce(me.pseudonym, mp.pseudonym, mf.pseudonym) end,
                case when not d.research_opt_out then mc.pseudonym end,
                case when {country} = 'NL' then nullif(regexp_extract(
                    upper(replace(d.postcode, ' ', '')), '^([1-9][0-9]{{3}})([A-Z]{{2}})?$', 1), '')
                end,
                {country},
                year(d.birth_date),
                d.gender,
                d.research_opt_out,
                ?, ?, now()
            from d
            left join map_email me on me.raw = d.email
            left join map_phone mp on mp.raw = d.phone
            left join map_fallback mf on mf.last_name = d.last_name
                and mf.birth_date = cast(d.birth_date as varchar) and mf.postcode = d.postcode
            left join map_customer mc on mc.raw = d.customer_id
            """,
            [institution, keyring.key_id, delivery_id],
        )
        _mark_accepted(
            conn, delivery_id, {"email_unparseable": bad_emails, "phone_unparseable": bad_phones}
        )
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    finally:
        for name in ("map_email", "map_phone", "map_fallback", "map_customer"):
            conn.unregister(name)
    return {"email_unparseable": bad_emails, "phone_unparseable": bad_phones}


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
                f"create or replace temp table d as select * from read_parquet('{_sql_path(sealed_url(path))}')"
            )
            if kind == "tickets":
                soft = _pseudonymise_tickets(conn, keyring, institution, delivery_id)
            else:
                soft = _pseudonymise_events(conn, institution, delivery_id)
            rows = conn.execute("select count(*) from d").fetchone()[0]
            conn.execute("drop table d")
            path.unlink()
            log.info("delivery %s of %s pseudonymised: %s rows", delivery_id, institution, rows)
            outcomes.append(PrivacyOutcome(delivery_id, institution, kind, rows, soft))
    return outcomes
