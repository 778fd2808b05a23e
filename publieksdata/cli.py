"""The ``publieksdata`` command (interfaces.md, "Command line")."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

from publieksdata.settings import DataHome, PublieksdataError, data_home, k_threshold

DEMO_SIZE = {"institutions": 30, "persons": 20_000, "years": 3}


def cmd_init(home: DataHome, args) -> None:
    from ingest.registry import REGISTRY_COLUMNS
    from orchestration.environment import configure_environment
    from privacy.keyring import create_keyring, load_master_key

    k_threshold()  # a refused k is a setting to fix now, not at the first build
    home.create()
    configure_environment(home)  # also creates the Dagster instance folder (dagster/)
    ring = create_keyring(home)
    source = load_master_key(home)
    print(f"data home ready: {home.root}")
    if not home.registry.exists():
        # an empty registry (its header): a member's deliveries are taken once its line is there
        home.registry.write_text(",".join(REGISTRY_COLUMNS) + "\n", encoding="utf-8")
        print(f"member registry: {home.registry} (empty: add a line per member, "
              f"{','.join(REGISTRY_COLUMNS)})")  # fmt: skip
    else:
        print(f"member registry: {home.registry} (kept as it is)")
    print(f"keyring: key {ring.key_id} (fingerprint {ring.fingerprint})")
    if source.origin == "local demo key":
        print(
            f"master key: a local demo key was created in {home.local_master_key}; for real data "
            "set PUBLIEKSDATA_MASTER_KEY (or PUBLIEKSDATA_MASTER_KEY_FILE) instead"
        )


def _sector_size(args) -> None:
    """A sector of at least one member, person and year; said in one line before anything is
    written (generate_sector's own ValueError would reach the user as 'unexpected')."""
    for option in DEMO_SIZE:
        if getattr(args, option) < 1:
            raise PublieksdataError(f"--{option} must be at least 1, got {getattr(args, option)}")


def cmd_generate(home: DataHome, args) -> None:
    from publieksdata.synthetic import generate_sector

    _sector_size(args)
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

    k_threshold()  # refused before anything is taken from landing/, not in the dbt build
    full_refresh = getattr(args, "full_refresh", False)
    # without -v a failed step is the one line main() prints, not Dagster's stack traces
    # (they stay in the run's event log: the Dagster UI, or `publieksdata -v run`)
    options = {"full_refresh": full_refresh, "failure_traces": args.verbose}
    if args.verbose:
        summary = run_job(home, **options)
    else:  # dbt's progress lines (dagster-dbt echoes them) stay in data/dbt/logs/dbt.log
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            summary = run_job(home, **options)
    print_summary(summary)


def cmd_demo(home: DataHome, args) -> None:
    _sector_size(args)
    cmd_init(home, args)
    cmd_generate(home, args)
    print("running the job (intake, privacy, dbt build and tests, publication) ...")
    cmd_run(home, args)
    print(
        f"open the Dagster UI with: PUBLIEKSDATA_HOME={home.root} DAGSTER_HOME={home.dagster} "
        ".venv/bin/dagster dev -w workspace.yaml"
    )


def cmd_erase(home: DataHome, args) -> None:
    """Right to erasure. The identifier is never printed, logged or put in an error."""
    from privacy.erasure import ErasureRequest
    from publieksdata.locking import warehouse_lock

    if (args.institution is None) != (args.customer_id is None):
        raise PublieksdataError(ERASE_USAGE)
    k_threshold()  # the rebuild after the erasure would refuse it: said before erasing
    if args.email is not None:
        request = ErasureRequest("email", _secret_argument(args.email, "e-mail address"))
    elif args.phone is not None:
        request = ErasureRequest("phone", _secret_argument(args.phone, "phone number"))
    elif args.institution is not None and args.customer_id is not None:
        request = ErasureRequest(
            "customer_id", _secret_argument(args.customer_id, "customer number"), args.institution
        )
    else:
        raise PublieksdataError(ERASE_USAGE)
    with warehouse_lock(home, "publieksdata erase"):
        _erase_and_republish(home, request)


def _erase_and_republish(home: DataHome, request) -> None:
    from privacy.erasure import compact_warehouse, erase_person, record_release

    outcome = erase_person(home, request)
    print(
        f"erasure {outcome.erasure_id}: {outcome.pseudonyms} pseudonym(s) added to the "
        f"suppression list, {outcome.ticket_rows} ticket row(s) unlinked from the person"
    )
    print("rebuilding and republishing without the person ...")
    result = _republish(home, "the erasure is recorded")
    release = Path(result["release"]).name if result.get("release") else None
    record_release(home, outcome.erasure_id, release)
    compact_warehouse(home)
    print_summary(result)
    print(f"logged in meta.erasure_log as {outcome.erasure_id} (no identifier, no pseudonym)")


def _republish(home: DataHome, done: str) -> dict:
    """Rebuild and publish a new release after ``done``; a failure says what stays done."""
    from publieksdata.pipeline import run_job

    try:
        # one line on failure, never Dagster's traces: an erasure's run must not echo anything
        return run_job(home, force_release=True, failure_traces=False)
    except PublieksdataError as exc:
        raise PublieksdataError(
            f"{done}, but the rebuild failed ({exc}); run 'publieksdata run' to republish"
        ) from None


def _secret_argument(value: str, what: str) -> str:
    """An identifier from the command line, or from stdin when given as '-' (keeps it out of ps)."""
    if value == "-":
        value = sys.stdin.readline().strip()
    if not value.strip():
        raise PublieksdataError(f"the {what} is empty")
    return value


def cmd_keys_rotate(home: DataHome, args) -> None:
    from publieksdata.locking import warehouse_lock

    k_threshold()  # the rebuild after the rotation would refuse it: said before re-keying
    with warehouse_lock(home, "publieksdata keys rotate"):
        _rotate_and_republish(home)


def _rotate_and_republish(home: DataHome) -> None:
    from privacy.erasure import compact_warehouse
    from privacy.rotation import rotate_keys

    outcome = rotate_keys(home)
    if outcome.resumed:
        print(f"finished the interrupted rotation: key {outcome.new_key_id} is active")
    else:
        print(
            f"key rotated: {outcome.old_key_id} -> {outcome.new_key_id} (fingerprint "
            f"{outcome.new_fingerprint}); {outcome.sector_pseudonyms} sector and "
            f"{outcome.customer_pseudonyms} customer pseudonyms re-keyed in "
            f"{outcome.ticket_rows} ticket rows, every link kept"
        )
    print("rebuilding and republishing ...")
    result = _republish(home, "the warehouse is re-keyed")
    compact_warehouse(home)  # no pseudonym of the old key left in the file's free blocks
    print_summary(result)


def cmd_reference(home: DataHome, args) -> None:
    from ingest.cbs import load_cbs_pc4

    n = load_cbs_pc4(home, args.cbs_stats, args.areas)
    print(f"reference/pc4.csv now holds {n} PC4 areas from CBS (Bron: CBS, CC BY 4.0)")


def cmd_status(home: DataHome, args) -> None:
    from publieksdata.pipeline import summary

    print_summary(summary(home))


def cmd_releases(home: DataHome, args) -> None:
    """The releases in published/, newest first, with what their manifests say."""
    from exports.release import describe_releases, keep_releases, verify_release

    releases = describe_releases(home)
    if not releases:
        print(f"no release yet in {home.published}")
        return
    damaged = []
    for r in reversed(releases):
        state = ""
        if args.verify:
            try:
                verify_release(home.published / r.release_id)
                state = "  verified"
            except (PublieksdataError, OSError, ValueError) as exc:
                state = "  DAMAGED"
                damaged.append(str(exc))
        print(
            f"{r.release_id:<20} {r.created_at or '?':<26} code {r.code_version or '?'}  "
            f"k={r.k}  {r.tables} tables  {r.institutions} packages  {r.files} files{state}"
            + ("  <- current" if r.is_current else "")
        )
    print(f"{len(releases)} release(s); the newest {keep_releases()} are kept "
          "(PUBLIEKSDATA_KEEP_RELEASES), and always the current one")  # fmt: skip
    if damaged:
        raise PublieksdataError("; ".join(damaged))


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
    if s.get("release_unchanged"):
        print(
            f"current release: {s['release']} (unchanged: the published content is the same, "
            f"release {Path(s['release']).name} kept)"
        )
    else:
        print(f"current release: {s['release'] or 'none yet'}")


def build_parser(redact: bool = False) -> argparse.ArgumentParser:
    parser = (_RedactingParser if redact else argparse.ArgumentParser)(
        prog="publieksdata",
        description="Shared audience data of the Dutch cultural sector: pseudonymised, "
        "aggregated, k-anonymous. State lives in PUBLIEKSDATA_HOME (default ./data).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create the data home, an empty member registry and the keyring")
    for name, helptext in (("generate", "write a synthetic sector into the data home"),
                           ("demo", "init + generate (small) + run, then print a summary")):  # fmt: skip
        p = sub.add_parser(name, help=helptext)
        for option, value in DEMO_SIZE.items():
            p.add_argument(f"--{option}", type=int, default=value)
        p.add_argument("--seed", type=int, default=42)
    run = sub.add_parser(
        "run", help="take pending deliveries, validate, pseudonymise, build, test, publish"
    )
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild every dbt model from scratch, not only the institutions whose data changed",
    )
    sub.add_parser("status", help="deliveries accepted, rejected and duplicate; the last release")
    releases = sub.add_parser(
        "releases", help="the releases in published/, newest first; the current one marked"
    )
    releases.add_argument(
        "--verify", action="store_true", help="check every file against its SHA-256"
    )
    erase = sub.add_parser(
        "erase",
        help="right to erasure: remove a person everywhere, keep them out of future deliveries, "
        "rebuild and republish",
        description="Give one identifier; '-' reads it from stdin instead (keeps it out of the "
        "process list and shell history). It is never printed or logged.",
    )
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", metavar="E")
    who.add_argument("--phone", metavar="P")
    who.add_argument("--customer-id", metavar="ID", help="with --institution")
    erase.add_argument("--institution", metavar="C", help="the member the customer number is of")
    keys = sub.add_parser("keys", help="the pseudonymisation keyring")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser(
        "rotate",
        help="new key version; re-key the warehouse from its pseudonyms, rebuild and republish",
    )
    reference = sub.add_parser(
        "reference",
        help="replace reference/pc4.csv with the real CBS statistics per PC4 (CC BY 4.0, CBS)",
    )
    reference.add_argument("--cbs-stats", type=Path, required=True,
                           help="CBS kerncijfers per postcode (PC4), CSV or XLSX")  # fmt: skip
    reference.add_argument("--areas", type=Path, required=True,
                           help="per PC4: gemeente_code, gemeente_naam, provincie, lat, lon")  # fmt: skip
    return parser


ERASE_USAGE = (
    "give one of --email E, --phone P, or --institution C --customer-id ID (values are never shown)"
)


class _RedactingParser(argparse.ArgumentParser):
    """For ``erase``: argparse errors repeat what was typed, which may be an identifier."""

    def error(self, message: str):
        print(
            f"publieksdata erase: the arguments could not be read; {ERASE_USAGE}", file=sys.stderr
        )
        raise SystemExit(2)


COMMANDS = {"init": cmd_init, "generate": cmd_generate, "run": cmd_run, "demo": cmd_demo,
            "status": cmd_status, "erase": cmd_erase, "keys": cmd_keys_rotate,
            "releases": cmd_releases, "reference": cmd_reference}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(redact="erase" in argv).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        for noisy in ("dagster", "dagster.builtin", "dagster_dbt", "great_expectations"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        home = data_home()
        COMMANDS[args.command](home, args)
    except PublieksdataError as exc:
        print(f"publieksdata {_command_name(args)}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"publieksdata {_command_name(args)}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a bare traceback; the class name says where to look
        if args.verbose and args.command != "erase":  # a traceback could quote the identifier
            logging.getLogger("publieksdata").exception("unexpected error")
        print(
            f"publieksdata {_command_name(args)}: unexpected {type(exc).__name__}; "
            "run again with -v, or see the Dagster UI for the run's log",
            file=sys.stderr,
        )
        return 2
    return 0


def _command_name(args) -> str:
    return f"keys {args.keys_command}" if args.command == "keys" else args.command


if __name__ == "__main__":
    sys.exit(main())
