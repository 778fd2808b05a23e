"""The dbt project as assets; dbt tests become asset checks."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.project import dbt_project, prepare_manifest
from publieksdata.settings import data_home

prepare_manifest()

PRODUCT_GROUPS = ("benchmark", "loyalty", "market")


class PublieksdataTranslator(DagsterDbtTranslator):
    """Groups models by product (benchmark, loyalty, market) and the rest as core."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id) or manifest["sources"].get(unique_id) or {}
        if node.get("resource_type") != "model":
            return spec
        fqn = node.get("fqn", [])
        group = next((g for g in PRODUCT_GROUPS if g in fqn), "core")
        return spec.replace_attributes(group_name=group)


translator = PublieksdataTranslator()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    pool="warehouse",
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    target = data_home().dbt / "target"
    yield from dbt.cli(["build"], context=context, target_path=target).stream()


def published_model_keys() -> list[dg.AssetKey]:
    """Asset keys of the models that form a release (dbt schema ``published``)."""
    import json

    manifest = json.loads(dbt_project.manifest_path.read_text())
    return [
        translator.get_asset_spec(manifest, uid, dbt_project).key
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["config"].get("schema") == "published"
    ]
