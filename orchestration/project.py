"""The dbt project, built in one place for Dagster, the CLI and the tests."""

from __future__ import annotations

import fcntl
import importlib.metadata
import shutil
import sys
from functools import cached_property
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from orchestration.dbt_warm import LAUNCHER, ParseAhead
from orchestration.environment import put_dbt_on_path

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"

# dagster-dbt finds dbt on PATH, also to parse the project: this module may be imported
# before anything configured the environment (a test importing one asset module first)
put_dbt_on_path()
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()


def _newest_source_mtime() -> float:
    sources = [p for p in DBT_PROJECT_DIR.rglob("*")
               if p.is_file() and p.suffix in {".sql", ".yml", ".yaml", ".csv"}
               and "target" not in p.relative_to(DBT_PROJECT_DIR).parts[:1]]  # fmt: skip
    return max((p.stat().st_mtime for p in sources), default=0.0)


def build_target(home) -> Path:
    """The target folder of the job's dbt builds in data home ``home`` (its ``dbt.log`` too)."""
    return home.dbt / "target"


def parse_ahead(home) -> ParseAhead | None:
    """What the warm dbt process should parse ahead of the build (orchestration/dbt_warm.py):
    the project, when the build's target folder holds no saved parse as new as its files."""
    ahead = ParseAhead(DBT_PROJECT_DIR, Path(dbt_project.profiles_dir), build_target(home))
    return ahead if ahead.needed(_newest_source_mtime()) else None


def prepare_manifest(force: bool = False) -> Path:
    """Run ``dbt parse`` when the manifest is missing or older than the project's files.

    Explicit for the CLI, CI and tests; ``dagster dev`` prepares it through prepare_if_dev.
    """
    manifest = dbt_project.manifest_path

    def stale() -> bool:
        return not manifest.exists() or manifest.stat().st_mtime < _newest_source_mtime()

    if not (force or stale()):
        return manifest
    # Processes that start together (two runs, parallel test workers) parse one at a time;
    # a process that waited finds the manifest fresh and reads it, never a half-written one.
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with open(manifest.parent / ".prepare.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if force or stale():
            dbt_project.preparer.prepare(dbt_project)
    return manifest


class DbtCli(DbtCliResource):
    """dagster-dbt's resource without two costs of every run that this project has no use for.

    - ``dbt --version`` in a subprocess (about 2 s) to learn which dbt it runs: when the
      executable is this environment's own ``dbt``, the version is the installed dbt-core's.
    - Loading dbt's macros in Dagster's own process (about 3 s) for an adapter handle, which
      dagster-dbt needs only to fetch row counts and column metadata into the event log. The
      job fetches neither: metadata of warehouse tables stays out of Dagster's event log.

    Measured in docs/performance.md (eighth round). Everything else is dagster-dbt's.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        executable = shutil.which(self.dbt_executable)
        if (
            executable
            # dbt-core's entry point or the launcher that runs it (orchestration/dbt_warm.py),
            # not dbtf (Fusion)
            and Path(executable).name in ("dbt", LAUNCHER)
            and Path(executable).parent == Path(sys.executable).parent
        ):
            return version.parse(importlib.metadata.version("dbt-core"))
        return super()._cli_version  # another dbt: ask it

    def _initialize_dbt_core_adapter(self, args):  # noqa: ARG002 (dagster-dbt's signature)
        return None
