"""The member registry (``institutions.csv``): who may deliver, and their primary discipline."""

from __future__ import annotations

import csv
import re

from ingest.standard import DISCIPLINES
from publieksdata.settings import DataHome, PublieksdataError

REGISTRY_COLUMNS = ("code", "name", "discipline", "pc4")
CODE_PATTERN = re.compile(r"^[a-z0-9_]{2,32}$")


def load_registry(home: DataHome) -> dict[str, dict[str, str]]:
    """Members by code; raises a PublieksdataError naming the line of a bad entry."""
    path = home.registry
    if not path.is_file():
        raise PublieksdataError(
            f"no member registry at {path}: run 'publieksdata init' or 'publieksdata generate'"
        )
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = [c for c in REGISTRY_COLUMNS if c not in header]
        if missing:
            raise PublieksdataError(f"{path}: the registry lacks column(s) {', '.join(missing)}")
        members: dict[str, dict[str, str]] = {}
        for line, row in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            code = row["code"]
            if not CODE_PATTERN.match(code):
                raise PublieksdataError(
                    f"{path}, line {line}: institution code must be 2-32 characters a-z, 0-9 or _"
                )
            if row["discipline"] not in DISCIPLINES:
                raise PublieksdataError(
                    f"{path}, line {line}: discipline must be one of {', '.join(DISCIPLINES)}"
                )
            if code in members:
                raise PublieksdataError(f"{path}, line {line}: code {code} appears twice")
            members[code] = row
    return members
