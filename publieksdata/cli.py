"""The ``publieksdata`` command (interfaces.md, "Command line")."""

from __future__ import annotations

import argparse
import logging
import sys

from publieksdata.settings import DataHome, PublieksdataError, data_home

DEMO_SIZE = {"institutions": 30, "persons": 20_000, "years": 3}


def cmd_init(home: DataHome, args) -> None:
    from privacy.keyring import create_keyring, load_master_key

    home.create()
    ring = create_keyring(home)
    source = load_master_key(home)
    print(f"data home ready: {home.root}")
    print(f"keyring: key {ring.key_id} (fingerprint {ring.fingerprint})")
    if source.origin == "local demo key":
        print(
            f"master key: a local demo key was created in {home.local_master_key}; for real data "
            "set PUBLIEKSDATA_MASTER_KEY (or PUBLIEKSDATA_MASTER_KEY_FILE) instead"
        )


def cmd_generate(home: DataHome, args) -> None:
    from publieksdata.synthetic import generate_sector

    home.create()
    result = generate_sector(
        home.root, institutions=args.institutions, persons=args.persons, years=args.years,
        seed=args.seed,
    )  # fmt: skip
    print(
        f"generated {result['institutions']} institutions, {result['persons']} persons, "
        f"{result['tickets']} ticket rows in {result['deliveries']} deliveries "
        f"({min(result['years'])}-{max(result['years'])}) into {home.landing}"
    )


def cmd_run(home: DataHome, args) -> None:
    from publieksdata.pipeline import run_job

    print_summary(run_job(home))


def cmd_demo(home: DataHome, args) -> None:
    cmd_init(home, args)
    cmd_generate(home, args)
    print("running the job (intake, privacy, dbt build and tests, publication) ...")
    cmd_run(home, args)
    print("open the Dagster UI with: dagster dev -w workspace.yaml")


def cmd_status(home: DataHome, args) -> None:
    from publieksdata.pipeline import summary

    print_summary(summary(home))


def print_summary(s: dict) -> None:
    print(f"data home: {s['data_home']}")
    if "deliveries" in s:
        parts = ", ".join(f"{n} {status}" for status, n in s["deliveries"].items()) or "none"
        print(f"deliveries: {parts}")
    if "tickets" in s:
        print(f"tickets: {s['tickets']:,}  persons: {s['persons']:,}  "
              f"institutions: {s['institutions']}")  # fmt: skip
        print(
            f"benchmark rows: {s['benchmark_rows']} ({s['suppressed_rows']} with suppressed cells)"
        )
    print(f"current release: {s['release'] or 'none yet'}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="publieksdata",
        description="Shared audience data of the Dutch cultural sector: pseudonymised, "
        "aggregated, k-anonymous. State lives in PUBLIEKSDATA_HOME (default ./data).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create the data home, registry folder and keyring")
    for name, helptext in (("generate", "write a synthetic sector into the data home"),
                           ("demo", "init + generate (small) + run, then print a summary")):  # fmt: skip
        p = sub.add_parser(name, help=helptext)
        for option, value in DEMO_SIZE.items():
            p.add_argument(f"--{option}", type=int, default=value)
        p.add_argument("--seed", type=int, default=42)
    sub.add_parser(
        "run", help="take pending deliveries, validate, pseudonymise, build, test, publish"
    )
    sub.add_parser("status", help="deliveries accepted, rejected and duplicate; the last release")
    return parser


COMMANDS = {"init": cmd_init, "generate": cmd_generate, "run": cmd_run, "demo": cmd_demo,
            "status": cmd_status}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        for noisy in ("dagster", "dagster_dbt", "great_expectations"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        home = data_home()
        COMMANDS[args.command](home, args)
    except PublieksdataError as exc:
        print(f"publieksdata {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"publieksdata {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a bare traceback; the class name says where to look
        if args.verbose:
            logging.getLogger("publieksdata").exception("unexpected error")
        print(
            f"publieksdata {args.command}: unexpected {type(exc).__name__}; "
            "run again with -v, or see the Dagster UI for the run's log",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
