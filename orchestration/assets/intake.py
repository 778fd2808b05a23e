"""Intake and privacy as assets: landing -> quarantine -> validated and pseudonymised rows
(one pass, one step)."""

from collections import Counter

import dagster as dg

from ingest.intake import DeliveryOutcome
from ingest.reference import load_reference
from orchestration import dbt_warm
from orchestration.project import parse_ahead
from orchestration.withheld import values_withheld
from privacy.step import take_and_pseudonymise
from publieksdata.locking import warehouse_lock
from publieksdata.settings import data_home

WAREHOUSE_POOL = "warehouse"  # one writer to DuckDB at a time, across runs


class IntakeConfig(dg.Config):
    files: list[str] = []
    """Landing files to take, as ``<code>/<file name>``; empty means every file waiting."""


def _problem_summary(outcome: DeliveryOutcome) -> str:
    return "; ".join(
        p["rule"] + (f" ({p['column']}, {p['count']} rows)" if p.get("column") else "")
        for p in outcome.problems
    )


@dg.multi_asset(
    name="intake__deliveries",  # the op's name in run config (the landing sensor's runs)
    specs=[
        dg.AssetSpec(
            ["intake", "deliveries"],
            group_name="intake",
            description="Takes files from landing/<code>/ into quarantine (sealed) and validates "
            "them (Great Expectations); rejected files move to rejected/ with a report.",
        ),
        dg.AssetSpec(
            ["pseudo", "tickets"],
            deps=[["intake", "deliveries"]],
            group_name="privacy",
            description="Pseudonymised tickets: no direct identifiers, PC4, birth year.",
        ),
        dg.AssetSpec(
            ["pseudo", "events"],
            deps=[["intake", "deliveries"]],
            group_name="privacy",
            description="Events of every member, latest delivery wins.",
        ),
        dg.AssetSpec(
            ["perturbation", "person_record_keys"],
            deps=[["intake", "deliveries"]],
            group_name="privacy",
            description="One record key in [0, 1) per person key, for the cell-key "
            "perturbation of open years (docs/metrics.md); never published.",
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "deliveries_accepted",
            asset=["intake", "deliveries"],
            description="Every delivery of this run was accepted; a rejected one fails the "
            "check (a warning: the other deliveries go on) with its report attached.",
        )
    ],
    pool=WAREHOUSE_POOL,
)
def deliveries(context: dg.AssetExecutionContext, config: IntakeConfig):
    """Intake and the privacy step in one pass (privacy/step.py, ``take_and_pseudonymise``):
    each delivery is read once, validated and pseudonymised, with no file between the two."""
    home = data_home()
    if any(node.name == "dbt_models" for node in context.job_def.nodes):
        # dbt builds after this step in this run: it imports dbt meanwhile, on a core this
        # step leaves idle, and parses the project if the build would (orchestration/dbt_warm.py)
        dbt_warm.start(parse_ahead(home))
    try:
        with (
            warehouse_lock(home, f"intake and privacy (run {context.run.run_id})"),
            # the single pass runs on the privacy step's memory limit (privacy/step.py)
            values_withheld("intake and privacy", memory_setting="PUBLIEKSDATA_PRIVACY_MEMORY"),
        ):
            outcomes, pseudonymised = take_and_pseudonymise(home, only=config.files or None)
    except BaseException:
        dbt_warm.stop()  # no build follows a failed step
        raise
    status = Counter(o.status for o in outcomes)
    rejected = [o for o in outcomes if o.status == "rejected"]
    for o in rejected:
        context.log.warning(f"rejected {o.institution}/{o.file_name}: {_problem_summary(o)}")
    per_delivery = {
        f"{o.institution}/{o.file_name}": {
            "status": o.status,
            "rows": o.rows,
            **({"soft_problems": o.soft} if o.soft else {}),
            **({"problems": _problem_summary(o), "report": o.report} if o.report else {}),
        }
        for o in outcomes
    }
    yield dg.MaterializeResult(
        asset_key=["intake", "deliveries"],
        metadata={
            "files": len(outcomes),
            "validated": status.get("validated", 0),
            "rejected": status.get("rejected", 0),
            "duplicate": status.get("duplicate", 0),
            "rows_validated": sum(o.rows for o in outcomes if o.status == "validated"),
            "soft_problems": sum(sum(o.soft.values()) for o in outcomes),
            "deliveries": dg.MetadataValue.json(per_delivery),
        },
    )
    yield dg.AssetCheckResult(
        asset_key=["intake", "deliveries"],
        check_name="deliveries_accepted",
        passed=not rejected,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rejected": len(rejected),
            "reports": dg.MetadataValue.md(
                "\n".join(
                    f"- `{o.institution}/{o.file_name}`: {_problem_summary(o)} — report `{o.report}`"
                    for o in rejected
                )
                or "none"
            ),
        },
    )
    for kind, key in (("tickets", ["pseudo", "tickets"]), ("events", ["pseudo", "events"])):
        mine = [o for o in pseudonymised if o.kind == kind]
        soft = Counter()
        for o in mine:
            soft.update(o.soft)
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "deliveries": len(mine),
                "rows": sum(o.rows for o in mine),
                **({"soft_problems": dg.MetadataValue.json(dict(soft))} if soft else {}),
            },
        )
    yield dg.MaterializeResult(
        asset_key=["perturbation", "person_record_keys"],
        metadata={"deliveries": sum(1 for o in pseudonymised if o.kind == "tickets")},
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["reference", "institutions"],
            group_name="reference",
            description="The member registry, institutions.csv.",
        ),
        dg.AssetSpec(
            ["reference", "pc4"],
            group_name="reference",
            description="Statistics per PC4 area (CBS column names).",
        ),
    ],
    pool=WAREHOUSE_POOL,
)
def reference_data(context: dg.AssetExecutionContext):
    home = data_home()
    with warehouse_lock(home, f"reference data (run {context.run.run_id})"):
        counts = load_reference(home)
    unplaced = counts["without_location"]
    if unplaced:
        context.log.warning(
            f"{len(unplaced)} member(s) without a location ({', '.join(unplaced[:10])}): their PC4 "
            "in institutions.csv is empty or not in the PC4 reference, so market_area has no "
            "distances and market_catchment no shares or radii for them (n_persons 0)"
        )
    yield dg.MaterializeResult(
        asset_key=["reference", "institutions"],
        metadata={"institutions": counts["institutions"], "without_location": unplaced},
    )
    yield dg.MaterializeResult(
        asset_key=["reference", "pc4"], metadata={"pc4_areas": counts["pc4_areas"]}
    )
