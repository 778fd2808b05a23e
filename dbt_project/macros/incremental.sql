{#- Incremental by institution (docs/performance.md, "Nightly refresh").

    The person-level models of the lower layers (links, resolved tickets, fact, visits, first
    visits, person-years) hold each institution's rows as a block. Every row carries the
    institution's version: the last time any of its rows in pseudo.tickets was written
    (int_institution_versions; the privacy step, erasure and key rotation set loaded_at). A
    build recomputes only the institutions whose version moved:

    - the pre-hook deletes the blocks of changed institutions (and of institutions that are
      gone);
    - the model selects only institutions that now have no block or an older one, and appends.

    A crash between the two leaves an institution without a block, which the next build
    recomputes; a full refresh (`dbt build --full-refresh`) rebuilds everything. -#}

{% macro changed_institutions() -%}
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
{%- endmacro %}

{% macro delete_changed_institutions() -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where institution_code in ({{ changed_institutions() }})
       or institution_code not in (
           select institution_code from {{ ref('int_institution_versions') }}
       )
    {%- endif -%}
{%- endmacro %}

{#- The filter of an incremental model's input: only the changed institutions. -#}
{% macro only_changed_institutions(column='institution_code') -%}
    {%- if is_incremental() -%}
    {{ column }} in ({{ changed_institutions() }})
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}
