"""Intake and privacy as assets: landing -> quarantine -> validated -> pseudonymised rows."""

from collections import Counter

import dagster as dg

from ingest.intake import take_deliveries
from ingest.reference import load_reference
from privacy.step import pseudonymise_pending
from publieksdata.settings import data_home


@dg.asset(
    key=["intake", "deliveries"],
    group_name="intake",
    description="Takes every file from landing/<code>/ into quarantine and validates it "
    "(Great Expectations); rejected files move to rejected/ with a report.",
)
def deliveries(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    outcomes = take_deliveries(data_home())
    status = Counter(o.status for o in outcomes)
    for o in outcomes:
        if o.status == "rejected":
            context.log.warning(
                f"rejected {o.institution}/{o.file_name}: "
                + "; ".join(
                    p["rule"] + (f" ({p['column']})" if p.get("column") else "") for p in o.problems
                )
            )
    return dg.MaterializeResult(
        metadata={
            "files": len(outcomes),
            "validated": status.get("validated", 0),
            "rejected": status.get("rejected", 0),
            "duplicate": status.get("duplicate", 0),
            "rows_validated": sum(o.rows for o in outcomes if o.status == "validated"),
        }
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["pseudo", "tickets"],
            deps=[deliveries],
            group_name="privacy",
            description="Pseudonymised tickets: no direct identifiers, PC4, birth year.",
        ),
        dg.AssetSpec(
            ["pseudo", "events"],
            deps=[deliveries],
            group_name="privacy",
            description="Events of every member, latest delivery wins.",
        ),
    ]  # fmt: skip
)
def pseudonymised(context: dg.AssetExecutionContext):
    outcomes = pseudonymise_pending(data_home())
    for kind, key in (("tickets", ["pseudo", "tickets"]), ("events", ["pseudo", "events"])):
        mine = [o for o in outcomes if o.kind == kind]
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={"deliveries": len(mine), "rows": sum(o.rows for o in mine)},
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
    ]  # fmt: skip
)
def reference_data(context: dg.AssetExecutionContext):
    counts = load_reference(data_home())
    yield dg.MaterializeResult(asset_key=["reference", "institutions"],
                               metadata={"institutions": counts["institutions"]})  # fmt: skip
    yield dg.MaterializeResult(asset_key=["reference", "pc4"],
                               metadata={"pc4_areas": counts["pc4_areas"]})  # fmt: skip
