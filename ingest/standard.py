"""The delivery standard v1 as data: column names, aliases, kinds and value vocabularies."""

from __future__ import annotations

TICKET_COLUMNS = (
    "ticket_id", "order_id", "event_id", "event_start", "sold_at", "price", "ticket_type",
    "channel", "status", "customer_id", "email", "phone", "first_name", "last_name", "street",
    "house_number", "postcode", "city", "country", "birth_date", "gender", "research_opt_out",
)  # fmt: skip
TICKET_REQUIRED = ("ticket_id", "order_id", "event_id", "event_start", "sold_at", "price")

EVENT_COLUMNS = ("event_id", "starts_at", "discipline", "event_name", "venue", "capacity")
EVENT_REQUIRED = ("event_id", "starts_at", "discipline")

# What a validated delivery keeps for the privacy step (its canonical Parquet in quarantine):
# only the columns privacy/step.py reads. The typed table's row numbers and given/unknown flags
# have served their checks by then, and a first name feeds nothing, so it is not kept at all.
CANONICAL_COLUMNS = {
    "tickets": ("ticket_id", "order_id", "event_id", "event_start", "sold_at", "price",
                "ticket_type", "channel", "status", "customer_id", "email", "phone",
                "last_name", "postcode", "country", "birth_date", "gender", "research_opt_out"),
    "events": ("event_id", "starts_at", "discipline", "event_name", "venue", "capacity"),
}  # fmt: skip

# Columns whose values identify a person: never in a report, a log or GE results.
IDENTIFIER_COLUMNS = frozenset(
    {"customer_id", "email", "phone", "first_name", "last_name", "street", "house_number",
     "postcode", "city", "birth_date"}
)  # fmt: skip

ALIASES = {
    # Dutch aliases of the standard, and common English variants of ticketing exports
    "e-mail": "email", "emailadres": "email", "e-mailadres": "email", "mail": "email",
    "email_address": "email",
    "voornaam": "first_name", "firstname": "first_name",
    "achternaam": "last_name", "lastname": "last_name", "surname": "last_name",
    "telefoon": "phone", "telefoonnummer": "phone", "mobiel": "phone", "phone_number": "phone",
    "straat": "street", "huisnummer": "house_number",
    "woonplaats": "city", "plaats": "city",
    "geboortedatum": "birth_date", "date_of_birth": "birth_date", "dob": "birth_date",
    "geslacht": "gender",
    "prijs": "price", "bedrag": "price",
    "bestelnummer": "order_id", "ordernummer": "order_id",
    "ticketnummer": "ticket_id",
    "voorstelling": "event_id", "evenement": "event_id", "voorstelling_id": "event_id",
    "evenement_id": "event_id",
    "verkoopdatum": "sold_at",
    "kanaal": "channel", "verkoopkanaal": "channel",
    "capaciteit": "capacity",
    "land": "country",
    "klantnummer": "customer_id", "relatienummer": "customer_id",
    "tickettype": "ticket_type", "soort_ticket": "ticket_type",
    "naam_evenement": "event_name", "titel": "event_name",
    "zaal": "venue", "locatie": "venue",
    "begintijd": "starts_at", "aanvang": "starts_at",
}  # fmt: skip

TICKET_TYPES = {
    "regular": "regular", "regulier": "regular", "normaal": "regular", "vol": "regular",
    "discount": "discount", "korting": "discount", "reduced": "discount",
    "free": "free", "vrijkaart": "free", "gratis": "free",
    "subscription": "subscription", "abonnement": "subscription",
    "cjp": "cjp", "museumkaart": "museumkaart", "other": "other", "overig": "other",
}  # fmt: skip
CHANNELS = {
    "online": "online", "web": "online", "internet": "online", "website": "online",
    "box_office": "box_office", "kassa": "box_office", "balie": "box_office",
    "phone": "phone", "telefoon": "phone", "telefonisch": "phone",
    "reseller": "reseller", "wederverkoper": "reseller",
    "other": "other", "overig": "other",
}  # fmt: skip
STATUSES = {
    "sold": "sold", "verkocht": "sold", "paid": "sold", "betaald": "sold",
    "cancelled": "cancelled", "canceled": "cancelled", "geannuleerd": "cancelled",
    "refunded": "refunded", "terugbetaald": "refunded", "gerestitueerd": "refunded",
}  # fmt: skip
DISCIPLINES = (
    "theater", "muziek", "dans", "opera", "cabaret", "jeugd", "museum", "erfgoed",
    "beeldende_kunst", "film", "festival", "overig",
)  # fmt: skip
DISCIPLINE_ALIASES = {d: d for d in DISCIPLINES} | {
    "theatre": "theater", "toneel": "theater", "music": "muziek", "dance": "dans",
    "kleinkunst": "cabaret", "youth": "jeugd", "jeugdtheater": "jeugd", "heritage": "erfgoed",
    "beeldende kunst": "beeldende_kunst", "visual_arts": "beeldende_kunst", "cinema": "film",
    "other": "overig",
}  # fmt: skip
GENDERS = {
    "m": "m", "man": "m", "male": "m", "dhr": "m", "dhr.": "m", "heer": "m", "de heer": "m",
    "meneer": "m",
    "v": "v", "f": "v", "vrouw": "v", "female": "v", "mevr": "v", "mevr.": "v", "mevrouw": "v",
    "mw": "v", "mw.": "v",
    "x": "x", "anders": "x", "other": "x", "non-binary": "x", "nonbinary": "x",
}  # fmt: skip
TRUE_VALUES = ("true", "1", "ja", "yes", "y", "j", "waar")
FALSE_VALUES = ("false", "0", "nee", "no", "n", "onwaar")

DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d",
    "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
    "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f",
)  # fmt: skip


def canonical_name(header: str) -> str:
    """Header as matched by the standard: trimmed, case-insensitive, Dutch aliases resolved."""
    key = " ".join(str(header).replace("\ufeff", "").strip().lower().split())
    if key in ALIASES:
        return ALIASES[key]
    key_ = key.replace(" ", "_")
    return ALIASES.get(key_, key_)


def detect_kind(columns: list[str]) -> str | None:
    """'tickets' or 'events' by the canonical columns present; None when neither fits."""
    cols = set(columns)
    if "ticket_id" in cols or {"sold_at", "price"} <= cols:
        return "tickets"
    if "event_id" in cols and ({"starts_at", "discipline", "capacity"} & cols):
        return "events"
    return None
