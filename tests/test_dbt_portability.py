"""Every dbt model compiles to SQL that sqlglot carries over to Spark and Trino.

The project runs on DuckDB; conventions.md asks for SQL other engines can run where it costs
nothing (dbt's cross-database macros, no DuckDB-only syntax). This compiles the project into a
temporary target against an empty warehouse and transpiles each model's compiled SQL from the
DuckDB dialect, raising on anything sqlglot cannot express in the target dialect, then parses
the result back in that dialect.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

DBT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"
DIALECTS = ("spark", "trino")

# DuckDB syntax that sqlglot "transpiles" into SQL the target engine rejects or reads differently
# (Trino has no SELECT * EXCEPT, no GROUP BY ALL), or that a cross-database macro replaces;
# looked for in the project's own models and macros
DUCKDB_ONLY = {
    "cast shorthand ::": r"::",
    "select * exclude / replace": r"\*\s*(exclude|replace)\s*\(",
    "group by all": r"group\s+by\s+all\b",
    "qualify": r"\bqualify\b",
    "pivot / unpivot": r"\b(un)?pivot\b",
    "list and struct functions": r"\b(list|struct)_\w+\s*\(",
    "arg_min / arg_max": r"\barg_(min|max)\s*\(",
    "count_if": r"\bcount_if\s*\(",
}


@pytest.fixture(scope="module")
def compiled_models(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("dbt_compile")
    env = {
        **os.environ,
        "PUBLIEKSDATA_WAREHOUSE": str(tmp / "empty.duckdb"),
        "DBT_LOG_PATH": str(tmp / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PUBLIEKSDATA_K", None)
    dbt = Path(sys.executable).parent / "dbt"
    result = subprocess.run(
        [str(dbt), "compile", "--profiles-dir", str(DBT_PROJECT), "--project-dir",
         str(DBT_PROJECT), "--target-path", str(tmp / "target"), "--select", "resource_type:model"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    manifest = json.loads((tmp / "target" / "manifest.json").read_text())
    return {
        node["name"]: node["compiled_code"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }


def test_every_model_was_compiled(compiled_models):
    models = {p.stem for p in (DBT_PROJECT / "models").rglob("*.sql")}
    assert models == set(compiled_models)
    assert all(code.strip() for code in compiled_models.values())


@pytest.mark.parametrize("dialect", DIALECTS)
def test_compiled_sql_transpiles(compiled_models, dialect):
    failures = {}
    for name, code in sorted(compiled_models.items()):
        try:
            for statement in sqlglot.transpile(
                code, read="duckdb", write=dialect, unsupported_level=ErrorLevel.RAISE
            ):
                sqlglot.parse_one(statement, read=dialect)
        except sqlglot.errors.SqlglotError as exc:
            failures[name] = str(exc).splitlines()[0]
    assert failures == {}


def test_no_duckdb_only_syntax_in_the_project():
    """The project's own SQL (models, macros): the adapter's macros may emit DuckDB syntax, such
    as dbt-duckdb's datediff with ::timestamp, since other adapters compile them their own way."""
    found = set()
    for path in [
        *(DBT_PROJECT / "models").rglob("*.sql"),
        *(DBT_PROJECT / "macros").rglob("*.sql"),
    ]:
        code = re.sub(r"{#.*?#}", "", path.read_text(), flags=re.DOTALL)
        code = re.sub(r"--[^\n]*", "", code)
        found |= {
            (path.name, label)
            for label, pattern in DUCKDB_ONLY.items()
            if re.search(pattern, code, flags=re.IGNORECASE)
        }
    assert found == set()
