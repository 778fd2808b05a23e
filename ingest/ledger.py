"""The delivery ledger (``intake.deliveries``): every file ever taken, by SHA-256."""

from __future__ import annotations

import json
import threading

import duckdb

# intake's workers record deliveries from several connections: one insert at a time (the
# single pass holds it while it commits a group: privacy/step.py, SinglePass)
WRITE = threading.Lock()


def find_by_sha(conn: duckdb.DuckDBPyConnection, sha256: str,
                institution: str) -> tuple[str, str] | None:  # fmt: skip
    """(delivery_id, status) of an earlier validated or accepted delivery of the same bytes by
    the same member. The same bytes in another member's folder are that member's delivery: a
    file belongs to the institution whose folder it is in (delivery standard)."""
    rows = conn.execute(
        "select delivery_id, status from wh.intake.deliveries where sha256 = ? "
        "and institution_code = ? and status in ('validated', 'accepted') "
        "order by received_at limit 1",
        [sha256, institution],
    ).fetchall()
    return rows[0] if rows else None


def record(conn: duckdb.DuckDBPyConnection, **row) -> None:
    """Write the ledger row of a delivery (taking the ledger's lock)."""
    with WRITE:
        insert(conn, **row)


def insert(conn: duckdb.DuckDBPyConnection, **row) -> None:
    """``record`` for a caller that holds ``WRITE``."""
    soft = row.get("soft_problems")
    conn.execute(
        """
        insert or replace into wh.intake.deliveries
        (delivery_id, sha256, institution_code, file_name, kind, file_format, status,
         rows_total, rows_loaded, soft_problems, reason, duplicate_of, received_at,
         finished_at)
        values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())
        """,
        [
            row["delivery_id"], row["sha256"], row["institution_code"], row["file_name"],
            row.get("kind"), row.get("file_format"), row["status"], row.get("rows_total"),
            row.get("rows_loaded"), json.dumps(soft) if soft is not None else None,
            row.get("reason"), row.get("duplicate_of"), row["received_at"],
        ],
    )  # fmt: skip


def pending(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """Validated deliveries waiting for the privacy step: (delivery_id, institution, kind)."""
    return conn.execute(
        "select delivery_id, institution_code, kind from wh.intake.deliveries "
        "where status = 'validated' order by received_at, delivery_id"
    ).fetchall()


def counts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return dict(
        conn.execute("select status, count(*) from wh.intake.deliveries group by status").fetchall()
    )


def status_of(conn: duckdb.DuckDBPyConnection, delivery_id: str) -> str | None:
    rows = conn.execute(
        "select status from wh.intake.deliveries where delivery_id = ?", [delivery_id]
    ).fetchall()
    return rows[0][0] if rows else None
