{#- Retired models leave nothing behind (docs/decisions.md, "Retired models are dropped").

    dbt never drops the table of a model that was removed from the project. Here such a table
    would still hold person keys that erasure and key rotation no longer reach (they rebuild
    the models, not stray tables), and a stray table in schema "published" would go into the
    next release. So every build first drops, in the schemas this project's models live in,
    each table or view that is not one of its models or seeds. dbt's own default schema (the
    run-date table) and any schema that holds a source (pseudo, reference, ...) are left alone,
    even if a model were ever put there. Names are quoted with their quotes doubled: a table
    named with a '"' is dropped like any other, and its name cannot end the statement. -#}
{% macro drop_retired_relations() -%}
    {%- if execute -%}
        {%- set current = [] -%}
        {%- set schemas = [] -%}
        {%- set kept = [target.schema | lower] -%}
        {%- for source in graph.sources.values() -%}
            {%- do kept.append(source.schema | lower) -%}
        {%- endfor -%}
        {%- for node in graph.nodes.values() if node.resource_type in ['model', 'seed', 'snapshot'] -%}
            {%- set schema = node.schema | lower -%}
            {%- do current.append(schema ~ '.' ~ ((node.alias or node.name) | lower)) -%}
            {%- if schema not in kept and schema not in schemas -%}
                {%- do schemas.append(schema) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set found = run_query(
            "select schema_name, table_name, 'table' from duckdb_tables() "
            ~ "where database_name = current_database() "
            ~ "union all select schema_name, view_name, 'view' from duckdb_views() "
            ~ "where database_name = current_database() and not internal") -%}
        {%- for row in found.rows -%}
            {%- set schema = row[0] | lower -%}
            {%- if schema in schemas and (schema ~ '.' ~ (row[1] | lower)) not in current -%}
                {%- do log('dropping ' ~ row[2] ~ ' ' ~ row[0] ~ '.' ~ row[1]
                           ~ ': no model of this project builds it', info=true) -%}
                {%- do run_query('drop ' ~ row[2] ~ ' if exists ' ~ quoted_name(row[0])
                                 ~ '.' ~ quoted_name(row[1])) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    select 1
{%- endmacro %}

{#- An identifier quoted for DuckDB, its own double quotes doubled (adapter.quote does not). -#}
{% macro quoted_name(name) -%}
    "{{ name | replace('"', '""') }}"
{%- endmacro %}
