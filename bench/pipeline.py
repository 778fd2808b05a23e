"""Benchmark of the whole job at national scale: wall time and peak RSS per stage.

    python bench/pipeline.py --rows 1000000 10000000 [--repeat 3] [--out bench/results/pipeline.json]

For each size: generate a sector (vectorised generator), measure the floor (DuckDB reading
every delivery once; measured before the job and again after it, the floor is the mean of
the two), run the whole job in-process (the `sector_refresh` job, as
`publieksdata run`), then add a nightly delivery of 1% new rows and run the job again.
Reports per stage (generate, reference, intake+validation+pseudonymisation -- one step, the
single pass, `intake_and_privacy`; before it two, `intake_validation` and `pseudonymisation` --
dbt models, dbt tests, publication) the wall time, the peak RSS and the CPU seconds of the process tree
(dbt runs in a child process), the cores that makes on average, the CPU time the hypervisor
stole from the machine meanwhile (a disturbed hour shows there), the cores used in every two
seconds of each stage (``cores_every_2s``: where a core stands idle), the floor with its own CPU
seconds, and the ratios job/floor and nightly/full. With ``--repeat N`` each size is run N
times (the same generated sector, a new data home each time) and ``summary`` gives the median
of each ratio per size beside every run's: the machine's speed drifts from hour to hour, and
one run is a draw. Figures go into docs/performance.md; the test suite asserts no timings.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ROWS_PER_PERSON = 7.4  # what the generator yields on average over 3 years


_TICK = os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    kids = [int(c) for c in fh.read().split()]
                    out += kids
                    stack += kids
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return out


def _tree_rss_kib(pid: int, descendants: list[int]) -> int:
    total = 0
    for p in [pid, *descendants]:
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def tree_cpu_seconds(descendants: list[int] | None = None) -> float:
    """CPU seconds (user + system) of this process, its finished children (dbt runs as one) and
    its live descendants (found in /proc unless given)."""
    own = os.times()
    total = own.user + own.system + own.children_user + own.children_system
    for p in _descendants(os.getpid()) if descendants is None else descendants:
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / _TICK  # utime, stime, cutime, cstime
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total


def steal_seconds() -> float:
    """Machine-wide CPU time stolen by the hypervisor (/proc/stat): how disturbed an hour was."""
    with open("/proc/stat") as fh:
        fields = fh.readline().split()
    return int(fields[8]) / _TICK if len(fields) > 8 else 0.0


class RssSampler(threading.Thread):
    """Samples, every 0.2 s, the RSS of this process and its children, their CPU seconds, and
    the machine's stolen CPU time."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[tuple[float, int]] = []
        self.cpu: list[tuple[float, float, float]] = []  # (time, tree CPU s, machine steal s)
        self._halt = threading.Event()

    def run(self):
        pid = os.getpid()
        while not self._halt.is_set():
            now, descendants = time.time(), _descendants(pid)
            self.samples.append((now, _tree_rss_kib(pid, descendants)))
            self.cpu.append((now, tree_cpu_seconds(descendants), steal_seconds()))
            time.sleep(0.2)

    def stop(self):
        self._halt.set()
        self.join()

    def peak_mb(self, start: float, end: float) -> float:
        window = [kib for t, kib in self.samples if start - 0.2 <= t <= end + 0.2]
        return round(max(window, default=0) / 1024, 1)

    def cpu_between(self, start: float, end: float) -> dict:
        """CPU seconds of the process tree, the cores that makes on average, and the machine's
        stolen seconds, between two moments (the nearest samples, 0.2 s apart)."""

        def at(moment: float) -> tuple[float, float, float]:
            return min(self.cpu, key=lambda sample: abs(sample[0] - moment))

        (t0, cpu0, steal0), (t1, cpu1, steal1) = at(start), at(end)
        cpu = cpu1 - cpu0
        return {
            "cpu_s": round(cpu, 1),
            # None for a stage shorter than the sampling period (both ends the same sample)
            "cores": round(cpu / (t1 - t0), 2) if t1 > t0 else None,
            "steal_s": round(steal1 - steal0, 1),
        }

    def cores_over_time(self, start: float, end: float, window: float = 2.0) -> list[float]:
        """The cores the process tree used in each ``window`` seconds from ``start`` (the last
        window may be shorter; one shorter than a sample period is left out). Where a stage
        leaves a core idle (a start waiting on the disk, a tail of one statement at a time)
        shows here, not in the stage's average (docs/performance.md, twenty-sixth round)."""
        samples = [s for s in self.cpu if start - 0.1 <= s[0] <= end + 0.1]
        out: list[float] = []
        first = 0
        while first < len(samples) - 1:
            last = first + 1  # at least one sample on, even after a stall of the sampler
            while (
                last + 1 < len(samples)
                and samples[last + 1][0] - samples[first][0] <= window + 0.01
            ):
                last += 1
            (t0, cpu0, _), (t1, cpu1, _) = samples[first], samples[last]
            if t1 - t0 < 0.3:
                break
            out.append(round((cpu1 - cpu0) / (t1 - t0), 2))
            first = last
        return out


def floor_seconds(landing: Path) -> float:
    """DuckDB reading every delivery once, all columns (CSV, Parquet; XLSX with calamine)."""
    import duckdb
    from python_calamine import CalamineWorkbook

    # the files were just written (generated, or copied): their pages are flushed first, so
    # the floor times reading them, not reading them beside the kernel writing them out
    os.sync()
    conn = duckdb.connect()
    t = time.perf_counter()
    for path in sorted(landing.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".xlsx":
            sum(1 for _ in CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).iter_rows())
            continue
        if path.suffix == ".parquet":
            src = f"read_parquet('{path}')"
        else:
            with path.open("rb") as fh:
                head = fh.read(1 << 20)
            try:
                head.decode("utf-8")
                enc = "utf-8"
            except UnicodeDecodeError:
                enc = "latin-1"
            src = f"read_csv('{path}', all_varchar = true, encoding = '{enc}')"
        conn.execute(f"select count(*), max(columns(*)) from {src}").fetchall()
    return time.perf_counter() - t


def stage_times(instance, result, sampler: RssSampler) -> dict:
    """Per Dagster step: seconds and peak RSS, from the run's event log."""
    starts, ends = {}, {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            ends[event.step_key] = entry.timestamp
    names = {"reference_data": "reference", "intake__deliveries": "intake_and_privacy",
             "dbt_models": "dbt_build", "release": "publication"}  # fmt: skip
    out = {}
    for step, label in names.items():
        if step in starts and step in ends:
            out[label] = {
                "seconds": round(ends[step] - starts[step], 1),
                "peak_rss_mb": sampler.peak_mb(starts[step], ends[step]),
                **sampler.cpu_between(starts[step], ends[step]),
                "cores_every_2s": sampler.cores_over_time(starts[step], ends[step]),
            }
    return out


def dbt_warm_used(instance, result) -> bool:
    """Whether the run's dbt build ran in the process warmed during intake (orchestration/dbt_warm.py)."""
    from orchestration.dbt_warm import RAN_WARM

    return any(entry.user_message == RAN_WARM for entry in instance.all_logs(result.run_id))


def dbt_split(home: Path) -> dict:
    """Time of dbt models vs dbt tests, and the slowest nodes, from run_results.json."""
    results = json.loads((home / "dbt" / "target" / "run_results.json").read_text())["results"]
    models = sum(r["execution_time"] for r in results if r["unique_id"].startswith("model."))
    tests = sum(
        r["execution_time"] for r in results if r["unique_id"].startswith(("test.", "unit_test."))
    )
    # the three slowest nodes, so that a build that took much longer than usual says where
    slowest = sorted(results, key=lambda r: r["execution_time"], reverse=True)[:3]
    return {
        "dbt_models_s": round(models, 1),
        "dbt_tests_s": round(tests, 1),
        "dbt_slowest": [[r["unique_id"].split(".")[2], round(r["execution_time"], 1)]
                        for r in slowest],  # model.<project>.<name>, test.<project>.<name>.<hash>
    }  # fmt: skip


def add_nightly_delivery(home: Path, fraction: float, total_rows: int, night: int = 0) -> int:
    """A delivery of new tickets, `fraction` of the sector's rows, for the first member; with
    ``night`` > 0 for the night-th member of the registry (wrapping round), with ticket ids of
    that night (bench/nights.py: each night's rows are new, not a re-delivery)."""
    import csv

    import duckdb

    with (home / "institutions.csv").open() as fh:
        codes = [row["code"] for row in csv.DictReader(fh)]
    code = codes[night % len(codes)]
    events = home / "landing" / code
    events.mkdir(parents=True, exist_ok=True)
    rows = max(int(total_rows * fraction), 1)
    tag = f"{night}_" if night else ""
    path = events / f"{code}_tickets_nightly{tag.rstrip('_')}.csv"
    year = time.localtime().tm_year
    duckdb.connect().execute(
        f"""
        copy (
            select 'N{tag}' || i as ticket_id, 'NO{tag}' || (i // 2) as order_id,
                   'NIGHTLY' as event_id,
                   '{year}-12-01 20:00:00' as event_start, '{year}-11-01 10:00:00' as sold_at,
                   '19.50' as price, 'nightly' || (i % {max(rows // 3, 1)}) || '@example.org' as email,
                   '1011 AB' as postcode
            from range({rows}) t(i)
        ) to '{path}' (header, delimiter ',')
        """
    )
    return rows


def loaded_counts(root: Path) -> dict:
    """Deliveries per ledger status and ticket rows in the warehouse: a figure is only worth
    comparing when every generated delivery was accepted (a rejected one is time not spent)."""
    import duckdb

    conn = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        statuses = dict(conn.execute(
            "select status, count(*) from intake.deliveries group by 1 order by 1").fetchall())  # fmt: skip
        [(tickets,)] = conn.execute("select count(*) from pseudo.tickets").fetchall()
    finally:
        conn.close()
    return {"deliveries": statuses, "ticket_rows_loaded": tickets}


def fresh_home(root: Path):
    """A new data home at ``root`` with its own master key and keyring; every setting (this
    process's environment) points into it."""
    from orchestration.environment import configure_environment
    from privacy.keyring import create_keyring
    from publieksdata.settings import DataHome

    os.environ.update({
        "PUBLIEKSDATA_HOME": str(root),
        "PUBLIEKSDATA_MASTER_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "PUBLIEKSDATA_WAREHOUSE": str(root / "warehouse.duckdb"),
        "DAGSTER_HOME": str(root / "dagster"),
        "DBT_LOG_PATH": str(root / "dbt" / "logs"),
    })  # fmt: skip
    home = DataHome(root)
    home.create()
    configure_environment(home)
    create_keyring(home)
    return home


def run_size(rows: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "home"
        home = fresh_home(root)
        from publieksdata.synthetic import generate_sector

        sampler = RssSampler()
        sampler.start()
        persons = int(rows / ROWS_PER_PERSON)
        institutions = 30 if rows <= 300_000 else 60 if rows <= 3_000_000 else 100
        t0 = time.time()
        generated = generate_sector(
            root, institutions=institutions, persons=persons, years=3, seed=seed
        )
        t1 = time.time()
        # the floor is measured before the job and again after it, on a copy of the same
        # deliveries (intake empties landing/): the machine's speed drifts within an hour, and
        # one 20-second reading before a 2-minute job made the ratio swing with it
        cpu_before_floor = tree_cpu_seconds()
        floor_before = floor_seconds(home.landing)
        floor_cpu = tree_cpu_seconds() - cpu_before_floor
        landing_copy = Path(tmp) / "landing_copy"
        shutil.copytree(home.landing, landing_copy)

        import dagster as dg

        from orchestration.project import prepare_manifest

        prepare_manifest()
        from orchestration.definitions import defs

        job = defs.resolve_job_def("sector_refresh")
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        with dg.DagsterInstance.get() as instance:
            t2 = time.time()
            result = job.execute_in_process(instance=instance, run_config=quiet)
            t3 = time.time()
            cpu_before_floor = tree_cpu_seconds()
            floor_after = floor_seconds(landing_copy)
            floor_cpu = (floor_cpu + tree_cpu_seconds() - cpu_before_floor) / 2
            shutil.rmtree(landing_copy)
            floor = (floor_before + floor_after) / 2
            full = {
                "wall_s": round(t3 - t2, 1),
                **sampler.cpu_between(t2, t3),
                "stages": stage_times(instance, result, sampler),
                "dbt_warm": dbt_warm_used(instance, result),
                **dbt_split(root),
                **loaded_counts(root),
            }
            nightly_rows = add_nightly_delivery(root, 0.01, generated["tickets"])
            t4 = time.time()
            result2 = job.execute_in_process(instance=instance, run_config=quiet)
            t5 = time.time()
            nightly = {"rows": nightly_rows, "wall_s": round(t5 - t4, 1),
                       **sampler.cpu_between(t4, t5),
                       "stages": stage_times(instance, result2, sampler),
                       "dbt_warm": dbt_warm_used(instance, result2), **dbt_split(root),
                       **loaded_counts(root)}  # fmt: skip
        sampler.stop()
        return {
            "requested_rows": rows,
            "rows": generated["tickets"],
            "institutions": institutions,
            "persons": persons,
            "generate": {"seconds": round(t1 - t0, 1), "peak_rss_mb": sampler.peak_mb(t0, t1)},
            "floor_s": round(floor, 1),  # the mean of the two
            "floor_before_s": round(floor_before, 1),
            "floor_after_s": round(floor_after, 1),
            "floor_cpu_s": round(floor_cpu, 1),
            "full": full,
            "job_over_floor": round(full["wall_s"] / floor, 1) if floor else None,
            "nightly_1pct": nightly,
            "nightly_over_full": round(nightly["wall_s"] / full["wall_s"], 2),
            "peak_rss_mb": sampler.peak_mb(t2, t5),
        }


def summarise(runs: list[dict]) -> dict:
    """Per requested size: every run's ratios and their medians, the slowest peak RSS, and the
    scaling from the smallest size to the largest on the median full-job times."""
    import statistics

    sizes: dict[int, list[dict]] = {}
    for run in runs:
        sizes.setdefault(run.get("requested_rows", run["rows"]), []).append(run)
    out: dict = {"sizes": {}}
    for rows, of_size in sorted(sizes.items()):
        out["sizes"][str(rows)] = {
            "runs": len(of_size),
            "job_over_floor": [r["job_over_floor"] for r in of_size],
            "job_over_floor_median": statistics.median(r["job_over_floor"] for r in of_size),
            "full_wall_s_median": statistics.median(r["full"]["wall_s"] for r in of_size),
            "floor_s_median": statistics.median(r["floor_s"] for r in of_size),
            "nightly_over_full": [r["nightly_over_full"] for r in of_size],
            "nightly_over_full_median": statistics.median(r["nightly_over_full"] for r in of_size),
            "peak_rss_mb_max": max(r["peak_rss_mb"] for r in of_size),
        }
    if len(sizes) >= 2:
        first, last = out["sizes"][str(min(sizes))], out["sizes"][str(max(sizes))]
        rows_of = {size: of_size[0]["rows"] for size, of_size in sizes.items()}
        out["scaling"] = {
            "rows_ratio": round(rows_of[max(sizes)] / rows_of[min(sizes)], 1),
            "time_ratio": round(last["full_wall_s_median"] / first["full_wall_s_median"], 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per size (the same sector); the summary gives the medians")  # fmt: skip
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from importlib.metadata import version

    from publieksdata.settings import intake_workers

    packages = ("duckdb", "dbt-core", "dbt-duckdb", "dagster", "great_expectations", "pandas")
    report = {
        "machine": {"cores": os.cpu_count()},
        "intake_workers": intake_workers(),
        # a floor or a stage that moves between runs may be a new release of one of these
        "packages": {name: version(name) for name in packages},
        "runs": [],
    }

    def write() -> None:
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2) + "\n")

    for rows in args.rows:
        for _ in range(max(1, args.repeat)):
            report["runs"].append(run_size(rows, args.seed))
            print(json.dumps(report["runs"][-1], indent=2), flush=True)
            write()  # after every run: a long series interrupted keeps its runs
    report["summary"] = summarise(report["runs"])
    if "scaling" in report["summary"]:
        report["scaling"] = report["summary"]["scaling"]
    print(json.dumps(report["summary"], indent=2), flush=True)
    write()


if __name__ == "__main__":
    main()
