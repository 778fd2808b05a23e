"""The dbt project as assets; dbt tests become asset checks."""

import datetime as dt
import json
import os
import subprocess
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration import dbt_warm
from orchestration.project import build_target, dbt_project, prepare_manifest
from privacy.guard import GuardAhead
from publieksdata.faults import fault_point
from publieksdata.locking import warehouse_lock
from publieksdata.settings import data_home, k_threshold

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


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False
    """Rebuild every model from scratch instead of only the institutions whose deliveries
    changed (the incremental models of macros/incremental.sql)."""


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    pool="warehouse",
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig):
    home = data_home()
    target = build_target(home)
    # The run date decides which years are open and so perturbed. dbt reads it itself when it
    # runs (PUBLIEKSDATA_AS_OF_DATE, which it inherits, else today: the on-run-start hook of
    # macros/perturbation.sql), so it is no --vars: a var that changes every day makes dbt
    # parse the whole project again every day. Checked here so a bad value fails before dbt.
    context.log.info(f"run date {run_date().isoformat()}, k = {k_threshold()}")  # both checked
    with warehouse_lock(home, f"dbt build (run {context.run.run_id})"):
        # dbt's unit tests check model logic on fixed inputs, not the data: they run in CI
        # (tests/test_dbt_metrics.py builds the project with them), not in every nightly build
        args = ["build", "--exclude-resource-type", "unit_test",
                *(["--full-refresh"] if config.full_refresh else [])]  # fmt: skip
        # the person-key guard's answers, made while dbt builds (privacy/guard.py, GuardAhead):
        # the warehouse's relations are read before dbt opens the file
        ahead = GuardAhead.snapshot(home)
        invocation = dbt.cli(args, context=context, target_path=target)
        try:
            ahead.start(invocation.manifest, target)
            for event in invocation.stream():
                yield event
                if isinstance(event, dg.Output | dg.AssetMaterialization):
                    built = event.metadata.get("unique_id")
                    if built is not None:
                        ahead.built(built.value)
                    # crash tests: a power cut while dbt builds (dbt is killed with the job)
                    fault_point("dbt.mid_build", also_kill=[invocation.process.pid])
        finally:
            _stop(invocation.process)  # never leave dbt writing after the step (and lock) ended
            warm = dbt_warm.stop()  # the warm process that ran it, or an unused one, ended
            ahead.stop()
        ahead_traced = ahead.finish()
    context.log.info(
        f"person-key guard: {ahead_traced} models traced while dbt built, for the release's check"
    )
    served = warm is not None and warm.served()
    context.log.info(dbt_warm.RAN_WARM if served else "dbt started for this step")
    fault_point("dbt.after_build")


def _stop(process) -> None:
    """End a dbt process that outlived its step (the step failed or was cancelled)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_date() -> dt.date:
    """The date the build counts as today: PUBLIEKSDATA_AS_OF_DATE (YYYY-MM-DD), else today."""
    given = os.environ.get("PUBLIEKSDATA_AS_OF_DATE", "").strip()
    return dt.date.fromisoformat(given) if given else dt.date.today()


def published_model_keys() -> list[dg.AssetKey]:
    """Asset keys of the models that form a release (dbt schema ``published``)."""
    manifest = json.loads(dbt_project.manifest_path.read_text())
    return [
        translator.get_asset_spec(manifest, uid, dbt_project).key
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["config"].get("schema") == "published"
    ]
