"""Publication: a release of the published marts, only after every dbt test passed."""

import dagster as dg

from exports.release import publish_release, remove_incomplete
from orchestration.assets.dbt import published_model_keys
from publieksdata.settings import data_home


@dg.asset(
    key=["release"],
    group_name="publication",
    deps=published_model_keys(),
    description="An immutable release folder in published/<id>/; published/current is switched "
    "only after the whole release is written and verified.",
)
def release(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    home = data_home()
    remove_incomplete(home)
    rel = publish_release(home)
    return dg.MaterializeResult(
        metadata={
            "release_id": rel.release_id,
            "path": dg.MetadataValue.path(str(rel.path)),
            "tables": dg.MetadataValue.json(rel.manifest["tables"]),
            "k": rel.manifest["k"],
        }
    )
