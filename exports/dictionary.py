"""The data dictionary of a package: column, meaning, unit and Dutch term of every column.

Meanings come from the column descriptions of the published dbt models (the dbt manifest of
the run that built the warehouse, ``<home>/dbt/target/manifest.json``, else the project's
``dbt_project/target/manifest.json``). The Dutch term is the one the description gives in
parentheses, unless a fixed term is known below; the unit follows from the column's name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

PROJECT_MANIFEST = (
    Path(__file__).resolve().parent.parent / "dbt_project" / "target" / "manifest.json"
)

# Dutch terms for columns whose description does not end in one (or to keep wording stable).
DUTCH_TERMS = {
    "institution_code": "instellingscode",
    "year": "jaar",
    "suppressed": "onderdrukt",
    "n_persons": "unieke bezoekers",
    "area_level": "gebiedsniveau",
    "area_code": "gebiedscode (PC4 of gemeentecode)",
    "population": "aantal inwoners",
    "peer_level": "niveau vergelijkingsgroep",
}

_PEER_STAT_UNITS = {"n": "institutions", "rank": "percentile rank 0-100"}


def load_descriptions(home_dbt: Path | None = None) -> dict[str, dict]:
    """{table: {"description": str, "columns": {column: description}}} of the published models."""
    candidates = ([home_dbt / "target" / "manifest.json"] if home_dbt else []) + [PROJECT_MANIFEST]
    for path in candidates:
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        out: dict[str, dict] = {}
        for node in manifest.get("nodes", {}).values():
            if node.get("resource_type") != "model" or node.get("schema") != "published":
                continue
            out[node.get("alias") or node["name"]] = {
                "description": " ".join((node.get("description") or "").split()),
                "columns": {
                    name: " ".join((col.get("description") or "").split())
                    for name, col in node.get("columns", {}).items()
                },
            }
        return out
    return {}


def dutch_term(column: str, description: str) -> str:
    if column in DUTCH_TERMS:
        return DUTCH_TERMS[column]
    # the last parenthesised phrase that is not a unit or a threshold
    for phrase in reversed(re.findall(r"\(([^()]+)\)", description)):
        if not re.search(r"[<>=]|\d", phrase):
            return phrase.strip()
    return ""


def unit(column: str, description: str = "") -> str:
    """The unit of a column, from its name (and, for money, its description)."""
    c = column
    peer = re.match(r"(.+)_peer_(n|mean|p25|median|p75|rank)$", c)
    if peer:
        if peer.group(2) in _PEER_STAT_UNITS:
            return _PEER_STAT_UNITS[peer.group(2)]
        return unit(peer.group(1))
    if c in ("year", "cohort_year"):
        return "year"
    if c == "years_since":
        return "years"
    if c == "suppressed" or c.startswith("is_"):
        return "true/false"
    if c in ("revenue", "avg_price", "avg_spend") or "EUR" in description:
        return "EUR"
    if c.endswith("_km") or c == "distance_km":
        return "km"
    if "days" in c:
        return "days"
    if c in ("penetration", "peer_penetration"):
        return "persons per 1,000 inhabitants"
    if c == "index" or c.endswith("_index"):
        return "index (100 = equal)"
    if c == "potential":
        return "persons"
    if c == "population":
        return "inhabitants"
    if (
        c.startswith("share")
        or c in ("retention", "new_retention", "occupancy")
        or c.endswith("_share")
    ):
        return "fraction 0-1"
    if c == "tickets":
        return "tickets"
    if c.startswith("n_") and "institution" in c:
        return "institutions"
    if c.startswith("n_") or c in ("n_persons",):
        return "persons"
    if c.startswith("avg_visits") or c == "tickets_per_person":
        return "per person"
    return ""


def dictionary_rows(
    tables: dict[str, list[tuple[str, str]]], descriptions: dict[str, dict]
) -> list[tuple[str, str, str, str, str, str]]:
    """(table, column, data_type, meaning, unit, dutch_term) for every column of ``tables``."""
    rows = []
    for table, columns in tables.items():
        described = descriptions.get(table, {}).get("columns", {})
        for column, data_type in columns:
            meaning = described.get(column, "")
            rows.append(
                (
                    table,
                    column,
                    data_type,
                    meaning,
                    unit(column, meaning),
                    dutch_term(column, meaning),
                )
            )
    return rows
