{#- Cell-key perturbation of open years (docs/metrics.md, "Releases over time").

    Each person has a record key in [0, 1) (pseudo.person_record_keys, written by the privacy
    step under its own secret). A cell's key is the fractional part of the sum of its persons'
    record keys; the p-table below maps it to a deviation in -2..+2. Only person counts of open
    years are perturbed, and only counts above k (a count of 0 stays 0, a count below k is
    withheld anyway, a count of exactly k is published as it is so that nothing goes below k).
    The deviation comes from a *join* on the cell key, so no value computed from a record key
    reaches a published column (privacy/guard.py). Record keys lie on a grid of 2^-24, so the sum
    is exact and the same set of persons gets the same deviation in every table and release.
    Disclosure control (k, secondary suppression) is decided on the exact counts; the perturbed
    count is what is shown, and shares and means over persons are computed from perturbed
    counts. -#}

{#- The run date and the first open year: a year is open until 1 February of the next.

    The run date is PUBLIEKSDATA_AS_OF_DATE (YYYY-MM-DD) when set, else today. It is a *run-time*
    value: the on-run-start hook (dbt_project.yml) writes it, once per dbt invocation, into the
    one-row table `dbt_run_date` of the target schema, and the models read that table. So the
    compiled SQL of the models is the same every day and dbt's partial parsing survives a new
    date (a dbt var would make every day's run parse the whole project again, an env_var read
    at parse time the models that use it: docs/decisions.md, "Scale"); and every model of one
    build sees the same date. DuckDB's getenv() exists only in its command-line client, not in
    the Python client dbt-duckdb uses, hence the hook. The env var is read only when `execute`
    is true, i.e. when dbt runs the hook, never while it parses the project. -#}
{% macro run_date_relation() -%}
    {{- return(api.Relation.create(
        database=target.database, schema=target.schema, identifier='dbt_run_date')) -}}
{%- endmacro %}

{% macro record_run_date() -%}
    {%- if execute -%}
        {%- set given = env_var('PUBLIEKSDATA_AS_OF_DATE', '') | trim -%}
        {%- if given -%}
            {#- strptime refuses anything but YYYY-MM-DD, so only a date reaches the SQL -#}
            {%- set day = modules.datetime.datetime.strptime(given, '%Y-%m-%d').date() -%}
        {%- else -%}
            {%- set day = modules.datetime.date.today() -%}
        {%- endif -%}
        create or replace table {{ run_date_relation() }} as
        select
            cast('{{ day.isoformat() }}' as date) as as_of_date,
            {{ day.year - 1 if day.month == 1 else day.year }} as first_open_year
    {%- endif -%}
{%- endmacro %}

{#- Whether `year` is open; needs `open_years` (the run-date table) in the FROM clause, as
    with_perturbed_counts puts it there. -#}
{% macro is_open_year(year) -%}
    ({{ year }} >= open_years.first_open_year)
{%- endmacro %}

{#- The p-table: (n_row, bucket, deviation). The cell key falls in one of 20 buckets of 0.05;
    n_row 1 is a count of k+1 (deviation -1, 0, +1 with 25/50/25%), n_row 2 a count of k+2 or
    more (-2, -1, 0, +1, +2 with 10/20/40/20/10%). Both rows have mean 0; neither takes a count
    below k. Designed like the ABS / Destatis p-tables, kept small. Not published. -#}
{% macro cell_key_ptable() -%}
    {%- set rows = {
        1: [-1] * 5 + [0] * 10 + [1] * 5,
        2: [-2] * 2 + [-1] * 4 + [0] * 8 + [1] * 4 + [2] * 2,
    } -%}
    {%- for n_row, deviations in rows.items() %}
    {%- set outer = loop %}
    {%- for deviation in deviations %}
    select {{ n_row }} as n_row, {{ loop.index0 }} as bucket, {{ deviation }} as deviation
    {%- if not (outer.last and loop.last) %} union all{% endif %}
    {%- endfor %}
    {%- endfor %}
{%- endmacro %}

{#- The p-table row of a count: NULL (no perturbation) in a closed year and for counts <= k. -#}
{% macro ptable_row(n, year) -%}
    case
        when {{ is_open_year(year) }} and {{ n }} > {{ k_min() }}
            then case when {{ n }} - {{ k_min() }} >= 2 then 2 else 1 end
    end
{%- endmacro %}

{#- The bucket of a cell key: the fractional part of the sum of the cell's record keys. -#}
{% macro cell_key_bucket(key_sum) -%}
    cast(floor(({{ key_sum }} - floor({{ key_sum }})) * 20) as integer)
{%- endmacro %}

{#- `relation` with, for each (count column, key-sum column[, year expression]) of `counts`, the
    perturbed count `<count>_p`. The year defaults to the relation's `year` column (the year the
    cell's persons are counted in). The key-sum columns stay in the relation: select the
    published columns explicitly downstream. -#}
{% macro with_perturbed_counts(relation, counts) -%}
select
    {{ relation }}.*
    {%- for count in counts %},
    {{ relation }}.{{ count[0] }} + coalesce(ptable_{{ loop.index }}.deviation, 0) as {{ count[0] }}_p
    {%- endfor %}
from {{ relation }}
cross join {{ run_date_relation() }} as open_years
{%- for count in counts %}
{%- set year = count[2] if count | length > 2 else relation ~ '.year' %}
left join ({{ cell_key_ptable() }}) as ptable_{{ loop.index }}
    on ptable_{{ loop.index }}.n_row = {{ ptable_row(relation ~ '.' ~ count[0], year) }}
    and ptable_{{ loop.index }}.bucket = {{ cell_key_bucket(relation ~ '.' ~ count[1]) }}
{%- endfor %}
{%- endmacro %}
