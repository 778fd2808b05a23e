"""Rejection reports a member can act on: JSON for machines, Markdown for people.

A report names the file, the institution, each rule broken, the column and
up to twenty row numbers. It never holds a value from the file.
"""

from __future__ import annotations

import json
from pathlib import Path

RULE_TITLES = {
    "unreadable": "The file cannot be read",
    "unknown_institution": "The upload folder is not a member institution",
    "unknown_kind": "The file is neither a tickets nor an events delivery",
    "required_column": "A required column is missing",
    "required_value": "A required value is empty or cannot be read",
    "price_range": "A price is out of range",
    "event_start_range": "An event date is out of range",
    "lead_time": "A ticket was sold more than two years before its event",
    "status_value": "A status is not one the standard knows",
    "capacity_value": "A capacity is not a whole number above 0",
    "duplicate_ticket_id": "A ticket_id appears more than once",
    "duplicate_event_id": "An event_id appears more than once",
}


def write_report(folder: Path, stem: str, report: dict) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / f"{stem}.report.json"
    md_path = folder / f"{stem}.report.md"
    json_path.write_text(json.dumps(report, indent=2, default=str))
    md_path.write_text(render_markdown(report))
    return json_path, md_path


def render_markdown(report: dict) -> str:
    lines = [
        f"# Delivery rejected: {report['file']}",
        "",
        f"- institution: `{report['institution']}`",
        f"- received: {report['received_at']}",
        f"- SHA-256: `{report['sha256']}`",
        f"- kind: {report.get('kind') or 'unknown'}",
        "",
        "Nothing of this file was loaded. Correct the problems below and upload the whole "
        "file again.",
        "",
    ]
    for p in report["problems"]:
        title = RULE_TITLES.get(p["rule"], p["rule"])
        column = f" — column `{p['column']}`" if p.get("column") else ""
        lines.append(f"## {title}{column}")
        if p.get("count"):
            rows = ", ".join(str(r) for r in p.get("rows", []))
            more = " (first ones shown)" if p["count"] > len(p.get("rows", [])) else ""
            lines.append(f"{p['count']} row(s); data rows {rows}{more}.")
        if p.get("detail"):
            lines.append(p["detail"])
        lines.append(f"**What to do:** {p['fix']}")
        lines.append("")
    lines.append(
        "Row numbers count data rows, the header not included (row 1 is the first line "
        "under the header)."
    )
    return "\n".join(lines) + "\n"
