"""Benchmark: one large CSV delivery through intake and the privacy step, with peak memory.

    python bench/intake_memory.py --rows 2000000 [--out bench/results/intake_2m.json]

Writes a canonical tickets CSV of N rows (about 1 in 4 rows with an e-mail, phone and
postcode of one of N/8 persons) into a temporary data home, then runs intake (read,
cast, validate with Great Expectations) and the privacy step in a child process and
reports wall time and the child's peak RSS. The figure is written down in
docs/performance.md; the test suite asserts no timings.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
from publieksdata.settings import data_home
from ingest.intake import take_deliveries
from privacy.step import pseudonymise_pending
home = data_home()
t0 = time.perf_counter()
outcomes = take_deliveries(home)
t1 = time.perf_counter()
pseudonymise_pending(home)
t2 = time.perf_counter()
print(json.dumps({"status": [o.status for o in outcomes], "rows": sum(o.rows for o in outcomes),
                  "intake_s": round(t1 - t0, 2), "privacy_s": round(t2 - t1, 2)}))
"""


def write_delivery(path: Path, rows: int) -> None:
    persons = max(rows // 8, 1)
    conn = duckdb.connect()
    conn.execute(
        f"""
        copy (
            select
                'T' || i as ticket_id,
                'O' || (i // 3) as order_id,
                'E' || (i % 500) as event_id,
                strftime(timestamp '2025-01-01 20:00' + to_days(cast(i % 360 as integer)), '%Y-%m-%d %H:%M:%S') as event_start,
                strftime(timestamp '2024-12-01 10:00' + to_days(cast(i % 360 as integer)), '%Y-%m-%d %H:%M:%S') as sold_at,
                cast(5 + (i % 60) as varchar) || '.50' as price,
                case when i % 4 = 0 then 'Visitor' || (hash(i) % {persons}) || '@Example.NL ' end as email,
                case when i % 4 = 0 then '06' || lpad(cast(hash(i) % {persons} as varchar), 8, '0') end as phone,
                case when i % 4 = 0 then cast(1000 + (hash(i) % 8999) as varchar) || ' AB' end as postcode,
                case when i % 4 = 0 then 'C' || (hash(i) % {persons}) end as customer_id
            from range({rows}) t(i)
        ) to '{path}' (header, delimiter ',')
        """
    )
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "home"
        env = dict(os.environ, PUBLIEKSDATA_HOME=str(root),
                   PUBLIEKSDATA_MASTER_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode())  # fmt: skip
        subprocess.run([sys.executable, "-m", "publieksdata.cli", "init"], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        (root / "institutions.csv").write_text(
            "code,name,discipline,pc4\nbench,Bench,theater,1011\n"
        )
        (root / "landing" / "bench").mkdir(parents=True)
        delivery = root / "landing" / "bench" / "tickets.csv"
        t = time.perf_counter()
        write_delivery(delivery, args.rows)
        gen_s = time.perf_counter() - t
        size = delivery.stat().st_size
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, check=True,
                             stdout=subprocess.PIPE, text=True, cwd=REPO)  # fmt: skip
        wall = time.perf_counter() - t
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        child = json.loads(out.stdout.strip().splitlines()[-1])
    report = {
        "rows": args.rows,
        "file_mb": round(size / 1e6, 1),
        "generate_s": round(gen_s, 1),
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(peak_kib / 1024, 1),
        **child,
    }
    report.pop("status", None)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
