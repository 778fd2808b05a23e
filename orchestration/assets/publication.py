"""Publication: a release of the published marts, only after every dbt test passed."""

import dagster as dg

from exports.release import publish_release, remove_incomplete
from orchestration.assets.dbt import published_model_keys
from privacy.guard import check_release
from publieksdata.settings import data_home


@dg.asset(
    key=["release"],
    group_name="publication",
    deps=published_model_keys(),
    description="An immutable release folder in published/<id>/; published/current is switched "
    "only after the whole release is written and verified. Blocked when the compiled SQL of a "
    "published model could carry a person key (privacy/guard.py).",
)
def release(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    home = data_home()
    guard = check_release(home)  # raises, and so blocks the release, on any finding
    remove_incomplete(home)
    rel = publish_release(home)
    return dg.MaterializeResult(
        metadata={
            "release_id": rel.release_id,
            "path": dg.MetadataValue.path(str(rel.path)),
            "tables": dg.MetadataValue.json(rel.manifest["tables"]),
            "k": rel.manifest["k"],
            "person_key_guard": f"{guard.columns} columns of {guard.models} published models "
            "traced: none carries a person key",
        }
    )
