"""A static guard: no published column can carry a person key.

Nothing published may carry a person key (metrics.md). The dbt tests check the
*values* of a build; this guard checks the *SQL*, so a model that would leak
fails even when today's data happens not to show it. It parses the compiled SQL
of every published dbt model and of every model upstream of it (sqlglot, DuckDB
dialect), and traces each output column back through CTEs, subqueries, joins,
unions and upstream models to the columns it is computed from.

A column is a person key when its name says so at the root (a source or a
relation outside the dbt graph: ``person_key``, ``*pseudonym``, ``record_key``).
Taint flows through every expression (functions, casts, arithmetic, CASE,
comparisons, string operations, min/max/any_value/first/list/string_agg ...)
except these, which reduce a person key to something that is not one:

- ``count(...)``, ``count(distinct ...)``, ``count_if(...)``,
  ``approx_count_distinct(...)``;
- ``... is null`` / ``... is not null``;
- the PARTITION BY and ORDER BY of a window (the window's function still counts)
  and the FILTER of an aggregate;
- join conditions, WHERE, GROUP BY and HAVING, which select rows but put no value
  in a column.

So ``sum(hash(person_key))`` is a finding, and so is a cell key computed from
record keys and used in a select expression; a value that only *joins* on such a
key (a lookup table's deviation) is not. The guard errs on the side of a
finding: a model it cannot parse or a ``select *`` it cannot expand is one too.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

from publieksdata.settings import DataHome, PublieksdataError

PUBLISHED_SCHEMA = "published"
# a pseudonym's head (publieksdata/warehouse.py, pseudonym_head) is a person key as much as
# the pseudonym it is the first half of
PERSON_KEY_NAME = re.compile(
    r"^(person_key|record_key|pseudonym|.*_pseudonym|(sector|customer|person)_head)$",
    re.IGNORECASE,
)
_REDUCING = (exp.Count, exp.CountIf, exp.ApproxDistinct)
_MAX_PATH = 6

Origin = str | None  # None: the column carries no person key; else the path it carries one by
Relation = tuple[str, str]  # (schema, name), lower case


@dataclass(frozen=True)
class Finding:
    model: str
    column: str
    origin: str

    def __str__(self) -> str:
        return f"{self.model}.{self.column} can carry a person key ({self.origin})"


@dataclass(frozen=True)
class GuardReport:
    models: int
    columns: int
    findings: list[Finding]
    # the answer of column_lineage for each model of this check, by _lineage_key, and the
    # relations each model's query names, by _names_key
    traced: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


class _Lineage:
    """Person-key taint of the output columns of one query, given its input relations."""

    def __init__(self, inputs: dict[Relation, dict[str, Origin]]):
        self.inputs = inputs
        self.memo: dict[tuple[int, str], Origin] = {}

    def outputs(self, root: Scope) -> dict[str, Origin]:
        expression = root.expression
        names = expression.named_selects
        return {name: self.projection(root, name, i) for i, name in enumerate(names)}

    def projection(self, scope: Scope, name: str, index: int | None = None) -> Origin:
        key = (id(scope), name)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = None  # a recursive CTE reaches itself: its base case decides
        result = self._projection(scope, name, index)
        self.memo[key] = result
        return result

    def _projection(self, scope: Scope, name: str, index: int | None) -> Origin:
        expression = scope.expression
        if isinstance(expression, exp.SetOperation):
            if index is None:
                names = expression.named_selects
                index = names.index(name) if name in names else None
            if index is None:
                return _by_name(name)
            for branch in scope.set_operation_scopes:
                branch_names = branch.expression.named_selects
                if index < len(branch_names):
                    origin = self.projection(branch, branch_names[index], index)
                    if origin:
                        return origin
            return None
        if not isinstance(expression, exp.Select):  # a table function (unnest ...)
            args = [a for a in expression.iter_expressions() if not isinstance(a, exp.Query)]
            origins = (self.expr(scope.parent or scope, a) for a in args)
            return next((o for o in origins if o), None)
        for projection in expression.selects:
            if projection.alias_or_name == name and not isinstance(projection, exp.Star):
                return self.expr(scope, projection)
        # a star that could not be expanded: any source may hold the column
        for source_name in scope.selected_sources:
            origin = self.source_column(scope, source_name, name)
            if origin:
                return origin
        return None

    def expr(self, scope: Scope, node: exp.Expression) -> Origin:
        if isinstance(node, _REDUCING):
            return None
        if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
            return None
        if isinstance(node, exp.Window | exp.Filter):
            return self.expr(scope, node.this)
        if isinstance(node, exp.Subquery):
            return self.expr(scope, node.this)
        if isinstance(node, exp.Select | exp.SetOperation):  # a scalar subquery
            sub = next((s for s in scope.subquery_scopes if s.expression is node), None)
            sub = sub or build_scope(node)
            if sub is None:
                return None
            for i, name in enumerate(sub.expression.named_selects):
                origin = self.projection(sub, name, i)
                if origin:
                    return origin
            return None
        if isinstance(node, exp.Column):
            return self.column(scope, node)
        for child in node.iter_expressions():
            origin = self.expr(scope, child)
            if origin:
                return origin
        return None

    def column(self, scope: Scope, column: exp.Column) -> Origin:
        name = column.name
        table = column.table
        current: Scope | None = scope
        while current is not None:  # correlated references live in an outer scope
            if table and table in current.sources:
                return self.source_column(current, table, name)
            if not table and len(current.selected_sources) == 1:
                return self.source_column(current, next(iter(current.selected_sources)), name)
            current = current.parent if table else None
        if not table:  # unqualified with several sources: any of them may hold it
            for source_name in scope.selected_sources:
                origin = self.source_column(scope, source_name, name)
                if origin:
                    return origin
        return _by_name(name)

    def source_column(self, scope: Scope, source_name: str, name: str) -> Origin:
        source = scope.sources.get(source_name)
        if isinstance(source, Scope):
            return self.projection(source, name)
        if isinstance(source, exp.Table):
            relation = (source.db.lower(), source.name.lower())
            columns = self.inputs.get(relation)
            here = f"{relation[0]}.{relation[1]}.{name}" if relation[0] else f"{relation[1]}.{name}"
            if columns is not None and name.lower() in columns:
                upstream = columns[name.lower()]
                return _join_path(here, upstream) if upstream else None
            return here if PERSON_KEY_NAME.match(name) else None
        return _by_name(name)


def _by_name(name: str) -> Origin:
    return name if PERSON_KEY_NAME.match(name) else None


def _join_path(here: str, upstream: str) -> str:
    parts = [here] + upstream.split(" <- ")
    if len(parts) > _MAX_PATH:
        parts = parts[: _MAX_PATH - 1] + ["...", parts[-1]]
    return " <- ".join(parts)


def column_lineage(
    sql: str, inputs: dict[Relation, dict[str, Origin]], parsed: exp.Expression | None = None
) -> dict[str, Origin]:
    """Taint of each output column of one compiled SELECT, given the taint of its inputs.

    ``inputs`` maps (schema, relation) to {column: origin or None}; a relation that is not in
    it is judged by column names only. ``parsed``: ``sql`` parsed already (it is changed).
    """
    try:
        parsed = parsed or sqlglot.parse_one(sql, dialect="duckdb")
        # only the relations the query names (by name, whatever their schema): qualify reads
        # no other, and normalising every warehouse relation's columns for each model was most
        # of a fresh check's time (docs/performance.md, twenty-eighth round)
        named = _named(parsed)
        schema: dict = {}
        for (db, table), columns in inputs.items():
            if columns and table in named:
                schema.setdefault(db, {})[table] = {c: "TEXT" for c in columns}
        qualified = qualify(
            parsed,
            dialect="duckdb",
            schema=_with_catalogs(parsed, schema),
            validate_qualify_columns=False,
            identify=False,
        )
        root = build_scope(qualified)
    except SqlglotError as exc:
        raise PublieksdataError(f"cannot parse: {str(exc).splitlines()[0]}") from None
    if root is None:
        raise PublieksdataError("not a query")
    outputs = _Lineage(inputs).outputs(root)
    if "*" in outputs:
        outputs["*"] = "a select * over a relation whose columns are unknown"
    return {name.lower(): origin for name, origin in outputs.items()}


def _with_catalogs(parsed: exp.Expression, schema: dict) -> dict:
    """The schema nested under every catalog the query names (dbt-duckdb writes catalog.db.t)."""
    catalogs = {t.catalog for t in parsed.find_all(exp.Table) if t.catalog}
    if not catalogs or not schema:
        return schema
    return {catalog: schema for catalog in catalogs}


def _relation(relation_name: str | None) -> Relation | None:
    if not relation_name:
        return None
    table = exp.to_table(relation_name, dialect="duckdb")
    return (table.db.lower(), table.name.lower())


# Tracing a model is a pure function of its compiled SQL, the taint of its inputs, this module
# and sqlglot: the same four give the same answer, so a release whose models did not change
# reuses the last answer (check_release keeps them in the data home).
_GUARD_VERSION = hashlib.sha256(
    Path(__file__).read_bytes() + sqlglot.__version__.encode()
).hexdigest()


def _lineage_key(sql: str, inputs: dict[Relation, dict[str, Origin]]) -> str:
    """The key of a model's answer: the guard, its SQL and its inputs (only the relations the
    query names: see _Tracer.visit)."""
    shape = sorted(
        [list(relation), sorted(columns.items())] for relation, columns in inputs.items()
    )
    return hashlib.sha256(json.dumps([_GUARD_VERSION, sql, shape]).encode()).hexdigest()


_NAMES = "names:"  # the prefix of a kept list of relation names (an answer's key has none)


def _names_key(sql: str) -> str:
    """Where the kept answers hold the relation names a query names."""
    return _NAMES + hashlib.sha256(json.dumps([_GUARD_VERSION, sql]).encode()).hexdigest()


def _named(parsed: exp.Expression) -> set[str]:
    """The names of the relations a parsed query reads (CTEs too), lower case."""
    return {t.name.lower() for t in parsed.find_all(exp.Table)}


class _Tracer:
    """The taint of the models of one manifest, parents first, each model traced once; a model
    whose key is among ``earlier``'s is not traced again. ``sql_of(uid, node)`` gives a model's
    compiled SQL."""

    def __init__(
        self,
        nodes: Mapping[str, dict],
        source_columns: Mapping[Relation, list[str]],
        earlier: Mapping[str, Any],
        sql_of: Callable[[str, dict], str | None],
    ):
        self.nodes = nodes
        self.source_columns = source_columns
        self.earlier = earlier
        self.sql_of = sql_of
        self.traced: dict[str, Any] = {}  # answers by _lineage_key, names by _names_key
        self.taint: dict[str, dict[str, Origin]] = {}

    def _names(self, sql: str, model: str) -> tuple[set[str], exp.Expression | None]:
        """The relation names the query names, and the parsed query when it had to be parsed
        for them (column_lineage then does not parse it again)."""
        key = _names_key(sql)
        names, parsed = self.earlier.get(key), None
        if not isinstance(names, list):
            try:
                parsed = sqlglot.parse_one(sql, dialect="duckdb")
            except SqlglotError as exc:
                first = str(exc).splitlines()[0]
                raise PublieksdataError(f"model {model}: cannot parse: {first}") from None
            names = sorted(_named(parsed))
        self.traced[key] = names
        return set(names), parsed

    def visit(self, uid: str, trail: tuple[str, ...] = ()) -> dict[str, Origin]:
        if uid in self.taint:
            return self.taint[uid]
        node = self.nodes.get(uid)
        if node is None:
            return {}
        relation = _relation(node.get("relation_name"))
        if node.get("resource_type") != "model":
            names = list(node.get("columns", {})) or (self.source_columns.get(relation) or [])
            where = ".".join(relation or (node.get("name", uid),))
            self.taint[uid] = {n.lower(): f"{where}.{n}" if _by_name(n) else None for n in names}
            return self.taint[uid]
        if uid in trail:
            return {}
        inputs: dict[Relation, dict[str, Origin]] = {}
        for parent in node.get("depends_on", {}).get("nodes", []):
            parent_relation = _relation(self.nodes.get(parent, {}).get("relation_name"))
            parent_columns = self.visit(parent, trail + (uid,))
            if parent_relation is not None:
                inputs[parent_relation] = parent_columns
        for relation_key, names in self.source_columns.items():
            inputs.setdefault(relation_key, {n.lower(): _by_name(n) for n in names})
        sql = self.sql_of(uid, node)
        if not sql:
            raise PublieksdataError(
                f"model {node.get('name', uid)} has no compiled SQL in the manifest: "
                "run dbt compile or dbt build first"
            )
        # column_lineage reads only the inputs the query names, so only those are in the key:
        # the answer is the same whatever else the warehouse holds (a new data home before its
        # first build and after it, GuardAhead). The names are kept with the answers, so a
        # model that did not change is not parsed again.
        names, parsed = self._names(sql, node.get("name", uid))
        key = _lineage_key(sql, {r: c for r, c in inputs.items() if r[1] in names})
        if not isinstance(self.earlier.get(key), dict):
            try:
                self.traced[key] = column_lineage(sql, inputs, parsed)
            except PublieksdataError as exc:
                raise PublieksdataError(f"model {node.get('name', uid)}: {exc}") from None
        else:
            self.traced[key] = self.earlier[key]
        self.taint[uid] = self.traced[key]
        return self.taint[uid]


def _published_models(manifest: Mapping) -> list[str]:
    return sorted(
        uid for uid, node in manifest.get("nodes", {}).items()
        if node.get("resource_type") == "model"
        and (node.get("config", {}).get("schema") or node.get("schema")) == PUBLISHED_SCHEMA
    )  # fmt: skip


def check_manifest(
    manifest: dict,
    *,
    source_columns: dict[Relation, list[str]] | None = None,
    published_tables: list[str] | None = None,
    earlier: Mapping[str, Any] | None = None,
) -> GuardReport:
    """Findings for every published model of a dbt manifest that holds compiled SQL.

    ``source_columns`` gives the columns of sources (and other relations) that dbt does not
    describe; ``published_tables`` the tables the release would export, so a table in schema
    ``published`` that no model builds (left over from a renamed model) is a finding too.
    ``earlier`` holds answers of an earlier check (``GuardReport.traced``): a model with the
    same key is not traced again.
    """
    nodes = {**manifest.get("nodes", {}), **manifest.get("sources", {})}
    tracer = _Tracer(
        nodes, source_columns or {}, earlier or {}, lambda uid, node: node.get("compiled_code")
    )
    published = _published_models(manifest)

    findings: list[Finding] = []
    columns = 0
    built = set()
    for uid in published:
        node = nodes[uid]
        built.add(node["name"].lower())
        outputs = tracer.visit(uid)
        columns += len(outputs)
        for column, origin in sorted(outputs.items()):
            if origin:
                findings.append(Finding(f"{PUBLISHED_SCHEMA}.{node['name']}", column, origin))
    for table in published_tables or []:
        if table.lower() not in built:
            findings.append(
                Finding(
                    f"{PUBLISHED_SCHEMA}.{table}",
                    "*",
                    "no dbt model builds this table, so its SQL cannot be checked: drop it",
                )
            )
    return GuardReport(len(published), columns, findings, tracer.traced)


class GuardAhead:
    """The guard's answers made while dbt builds, so that the release's check finds them kept.

    On a new data home (and after a change to the models) the release's check traced every
    model upstream of a published one (sqlglot, ~0.6 s of one core at 45 models) while the
    release waited. Here a model is traced on a thread of the dbt step as soon as dbt has built
    it (``built``, from the build's events), from the compiled SQL dbt wrote for it
    (``<target>/compiled``): its parents were built, and traced, before it. The columns of the
    relations outside dbt's graph are read before dbt opens the warehouse (``snapshot``).

    Nothing here decides anything. ``finish`` keeps the answers under their keys
    (_lineage_key: the guard, the SQL and the inputs it names) next to the last check's, and
    the release's check (check_release) takes an answer only where its own key for the model is
    the same, so a model traced here from other SQL or other inputs is traced again there. An
    error here (a model dbt did not build, a file it did not write) only means fewer answers
    kept; it never reaches the build.
    """

    def __init__(self, home: DataHome, source_columns: dict[Relation, list[str]]):
        self.home = home
        self.source_columns = source_columns
        self.earlier = _read_traced(home)
        self.wanted: set[str] = set()
        self.tracer: _Tracer | None = None
        self._hooks: list[dict] = []
        self._compiled = Path()
        self._built: set[str] = set()
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    @classmethod
    def snapshot(cls, home: DataHome) -> GuardAhead:
        """Read the warehouse's relations now, before dbt opens it (DuckDB lets one process
        have the file)."""
        try:
            source_columns, _ = _warehouse_relations(home)
        except duckdb.Error:
            source_columns = {}  # the release's check traces whatever this could not
        return cls(home, source_columns)

    def start(self, manifest: Mapping, target: Path) -> None:
        """Begin tracing the models of ``manifest`` (dbt's parse of the project) that a
        published model reads, from the compiled SQL in build target ``target``. Never raises:
        a manifest it cannot read means nothing is traced ahead."""
        try:
            self._start(manifest, target)
        except Exception:  # noqa: BLE001 (the release's check traces every model)
            self.tracer = None

    def _start(self, manifest: Mapping, target: Path) -> None:
        nodes = {**manifest.get("nodes", {}), **manifest.get("sources", {})}
        pending = _published_models(manifest)
        while pending:  # the published models and every model upstream of them
            uid = pending.pop()
            node = nodes.get(uid, {})
            if uid in self.wanted or node.get("resource_type") != "model":
                continue
            self.wanted.add(uid)
            pending.extend(node.get("depends_on", {}).get("nodes", []))
        self._hooks = [n for n in nodes.values() if n.get("resource_type") == "operation"]
        self._compiled = target / "compiled"

        def sql_of(uid: str, node: dict) -> str | None:
            if uid not in self._built:
                return None  # not built by this build: the release's check decides
            return self._compiled_sql(node)

        self.tracer = _Tracer(nodes, dict(self.source_columns), self.earlier, sql_of)
        self._thread = threading.Thread(target=self._run, name="person-key-guard-ahead")
        self._thread.daemon = True
        self._thread.start()

    def built(self, unique_id: str) -> None:
        """dbt has built this node (its compiled SQL is written)."""
        if unique_id in self.wanted:
            self._queue.put(unique_id)

    def _compiled_sql(self, node: dict) -> str:
        """The SQL dbt compiled for a node in this build (dbt's own rule for the file's path:
        a hook is one of several nodes of dbt_project.yml)."""
        path, original = node["path"], node["original_file_path"]
        if os.path.basename(path) != os.path.basename(original):
            original = os.path.join(original, path)
        return (self._compiled / node["package_name"] / original).read_text()

    def _hook_relations(self) -> None:
        """The relations dbt's on-run-start hooks create (the run-date table): they exist from
        the build's start, which the warehouse read before it does not show."""
        for hook in self._hooks:
            try:
                created = sqlglot.parse_one(self._compiled_sql(hook), dialect="duckdb")
            except (OSError, KeyError, SqlglotError):
                continue
            if not isinstance(created, exp.Create):
                continue
            query = created.expression
            if isinstance(created.this, exp.Table) and isinstance(query, exp.Query):
                relation = (created.this.db.lower(), created.this.name.lower())
                self.tracer.source_columns.setdefault(relation, list(query.named_selects))

    def _run(self) -> None:
        hooks_read = False
        while (uid := self._queue.get()) is not None:
            self._built.add(uid)
            try:
                if not hooks_read:  # the hooks ran before the first node was built
                    hooks_read = True
                    self._hook_relations()
                self.tracer.visit(uid)
            except Exception:  # noqa: BLE001 (untraced here: the release's check traces it)
                continue

    def finish(self) -> int:
        """Trace what was built so far, keep the answers; the number of models traced here."""
        self.stop()
        if self.tracer is None or self._thread is None:
            return 0
        self._thread.join()
        traced = {k: v for k, v in self.tracer.traced.items() if k not in self.earlier}
        if traced:
            try:
                _write_traced(self.home, {**self.earlier, **traced})
            except OSError:
                return 0  # not kept: the release's check traces them
        return sum(1 for key in traced if not key.startswith(_NAMES))

    def stop(self) -> None:
        """No more models: the thread ends after those it was given, and keeps nothing unless
        ``finish`` is called (a failed build)."""
        self._queue.put(None)


def _warehouse_relations(home: DataHome) -> tuple[dict[Relation, list[str]], list[str]]:
    """(columns of every table and view, tables in schema published) of the warehouse.

    Besides the pipeline's own tables (pseudo, reference, meta, intake) this names the columns
    of dbt's own relations: an incremental model's compiled SQL reads its own table (``this``,
    macros/incremental.sql), which is no parent in the manifest. Such a relation gets the
    by-name origin of every column (a person key by its name), like any relation outside the
    dbt graph."""
    if not home.warehouse.exists():
        return {}, []
    conn = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        rows = conn.execute(
            "select schema_name, table_name, column_name from duckdb_columns() "
            "where schema_name <> ? and database_name = current_database() "
            "order by schema_name, table_name, column_index",
            [PUBLISHED_SCHEMA],
        ).fetchall()
        published = [
            r[0]
            for r in conn.execute(
                "select table_name from duckdb_tables() where schema_name = ?", [PUBLISHED_SCHEMA]
            ).fetchall()
        ]
    finally:
        conn.close()
    columns: dict[Relation, list[str]] = {}
    for schema, table, column in rows:
        columns.setdefault((schema.lower(), table.lower()), []).append(column)
    return columns, published


def check_release(home: DataHome, manifest_path: Path | None = None) -> GuardReport:
    """Check what the next release would publish; raise PublieksdataError on any finding.

    Reads the manifest of the last dbt run against this data home (``<home>/dbt/target``),
    which holds the compiled SQL of exactly the tables the warehouse now has.
    """
    manifest_path = manifest_path or home.dbt / "target" / "manifest.json"
    if not manifest_path.is_file():
        raise PublieksdataError(
            f"no compiled dbt manifest at {manifest_path}: the dbt build must run before a release"
        )
    source_columns, published = _warehouse_relations(home)
    report = check_manifest(
        json.loads(manifest_path.read_text()),
        source_columns=source_columns,
        published_tables=published,
        earlier=_read_traced(home),
    )
    _write_traced(home, report.traced)  # only this check's answers: the file does not grow
    if report.findings:
        shown = "; ".join(str(f) for f in report.findings[:3])
        more = f" (and {len(report.findings) - 3} more)" if len(report.findings) > 3 else ""
        raise PublieksdataError(f"publication blocked by the person-key guard: {shown}{more}")
    return report


def _traced_path(home: DataHome) -> Path:
    return home.dbt / "guard_lineage.json"


def _read_traced(home: DataHome) -> dict[str, dict[str, Origin]]:
    """The answers of the last check (column names and their origins, no data); none when the
    file is missing or unreadable, and then every model is traced again."""
    try:
        traced = json.loads(_traced_path(home).read_text())
    except (OSError, ValueError):
        return {}
    return traced if isinstance(traced, dict) else {}


def _write_traced(home: DataHome, traced: dict[str, dict[str, Origin]]) -> None:
    path = _traced_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(traced, sort_keys=True))
    os.replace(tmp, path)
