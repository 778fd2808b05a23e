{#- Incremental by institution (docs/performance.md, "Nightly refresh").

    The person-level models of the lower layers (links, visits, first visits, person-years)
    hold each institution's rows as a block. Every row carries the
    institution's version: the last time any of its rows in pseudo.tickets was written
    (int_institution_versions; the privacy step, erasure and key rotation set loaded_at). A
    build recomputes only the institutions whose version moved:

    - the pre-hook deletes the blocks of changed institutions (and of institutions that are
      gone);
    - the model selects only institutions that now have no block or an older one, and appends.

    A crash between the two leaves an institution without a block, which the next build
    recomputes; a full refresh (`dbt build --full-refresh`) rebuilds everything.

    Three options for models whose rows depend on more than the institution's tickets:
    - reference=true: the model also reads the reference data (registry, PC4 statistics). Its
      rows carry the fingerprint of that data (int_reference_version) and when it changed, the
      pre-hook deletes every block, so the whole model is rebuilt.
    - missing_record_keys=true: the rows carry each person's record key, which the privacy step
      stores with the person's first tickets; only a person of an older version's warehouse can
      be without one until the next privacy step computes it (docs/decisions.md). An
      institution with a row still missing its key is recomputed, so a key that arrived later
      is always picked up (the pre-hook deletes that institution's block).
    - events=true: the model also reads the institution's events (pseudo.events), which it
      delivers apart from its tickets. Its rows carry the last loaded_at of those events
      (events_version in int_institution_versions), and an institution whose events were
      written since is recomputed.

    After the pre-hook, the model selects the institutions without a block
    (only_changed_institutions), so either option needs nothing more in the model itself. -#}

{% macro changed_institutions(missing_record_keys=false) -%}
    select versions.institution_code
    from {{ ref('int_institution_versions') }} as versions
    left join (
        select institution_code, max(institution_version) as built_version
        from {{ this }}
        group by institution_code
    ) as built
        on built.institution_code = versions.institution_code
    where built.built_version is null
       or versions.institution_version > built.built_version
    {%- if missing_record_keys %}
       or versions.institution_code in (
           select institution_code from {{ this }} where record_key is null
       )
    {%- endif %}
{%- endmacro %}

{#- Whether this model's table has all the given columns: a table built by an older version of
    the model may lack the columns that say what it holds. -#}
{% macro built_with(columns) -%}
    {%- set have = [] -%}
    {%- for column in adapter.get_columns_in_relation(this) -%}
        {%- do have.append(column.name | lower) -%}
    {%- endfor -%}
    {{- return(columns | reject('in', have) | list | length == 0) -}}
{%- endmacro %}

{% macro delete_changed_institutions(reference=false, missing_record_keys=false, events=false) -%}
    {%- if is_incremental() -%}
    {%- if not built_with(['institution_version']
                          + (['reference_version'] if reference else [])
                          + (['record_key'] if missing_record_keys else [])
                          + (['events_version'] if events else [])) -%}
    {#- built by an older version of the model: emptied, so it is rebuilt whole
        (on_schema_change adds the new columns) -#}
    delete from {{ this }}
    {%- else -%}
    delete from {{ this }}
    where institution_code in ({{ changed_institutions(missing_record_keys) }})
       or institution_code not in (
           select institution_code from {{ ref('int_institution_versions') }}
       )
    {%- if reference %}
       or reference_version is distinct from (
           select reference_version from {{ ref('int_reference_version') }}
       )
    {%- endif %}
    {%- if events %}
       or events_version is distinct from (
           select versions.events_version
           from {{ ref('int_institution_versions') }} as versions
           where versions.institution_code = {{ this }}.institution_code
       )
    {%- endif %}
    {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The filter of an incremental model's input: only the changed institutions (after the
    pre-hook: the institutions without a block). -#}
{% macro only_changed_institutions(column='institution_code') -%}
    {%- if is_incremental() and built_with(['institution_version']) -%}
    {{ column }} in ({{ changed_institutions() }})
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}

{#- Incremental by year (the sector-wide models: sector years, market sector, crossover).

    A sector-wide row (a person's year across the sector, a municipality's visitors of a
    discipline, an institution's overlap with a discipline) depends on every institution's
    persons of that year, so it cannot be rebuilt per institution. It can be rebuilt per year:
    these models read nothing of other years. Each year has a fingerprint of everything they
    read (int_year_fingerprints: the year's person-years and institution-years, the reference
    data and the sector's disciplines), and every row carries its year's. A build deletes the
    years whose fingerprint changed or that are gone (pre-hook) and computes the years that have
    no rows. A night that brings tickets of this year recomputes this year only; a change that
    reaches back (a correction, a customer linked anew, an erasure) changes the fingerprints of
    the years it reaches. -#}

{% macro delete_changed_years() -%}
    {%- if is_incremental() -%}
    {%- if not built_with(['year_fingerprint']) -%}
    delete from {{ this }}
    {%- else -%}
    delete from {{ this }}
    where not exists (
        select 1
        from {{ ref('int_year_fingerprints') }} as fingerprints
        where fingerprints.year = {{ this }}.year
          and fingerprints.year_fingerprint = {{ this }}.year_fingerprint
    )
    {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The filter of a year-incremental model's input: the years without rows (after the
    pre-hook: the changed ones). -#}
{% macro only_changed_years(column='year') -%}
    {%- if is_incremental() and built_with(['year_fingerprint']) -%}
    {{ column }} not in (select built.year from {{ this }} as built where built.year is not null)
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}

{#- An order-independent fingerprint of a group's rows over the given columns (DuckDB's hash;
    another adapter would use its own row hash here). -#}
{% macro rows_fingerprint(columns) -%}
    {{ dbt.concat(["cast(count(*) as varchar)", "'/'",
                   "cast(coalesce(sum(hash(" ~ columns | join(', ') ~ ")), 0) as varchar)"]) }}
{%- endmacro %}
