{#- Disclosure control of metrics.md, used inside the models (not only in tests). -#}

{% macro k_min() -%}
    {%- set k = var('k', env_var('PUBLIEKSDATA_K', '10')) | int -%}
    {%- if k < 5 -%}
        {{ exceptions.raise_compiler_error("k=" ~ k ~ " is refused: the disclosure rules need k >= 5") }}
    {%- endif -%}
    {{- return(k) -}}
{%- endmacro %}

{#- True when a count of persons may not be published: 1 .. k-1 persons (0 describes no one). -#}
{% macro k_fails(n) -%}
    ({{ n }} > 0 and {{ n }} < {{ k_min() }})
{%- endmacro %}

{#- A count of persons: published when 0 or >= k, else NULL. The decision is taken on the exact
    count `n`; `n_p`, when given, is the value shown (the perturbed count of an open year,
    macros/perturbation.sql). The same holds for the shares and means below. -#}
{% macro k_count(n, n_p=none) -%}
    case when {{ n }} = 0 or {{ n }} >= {{ k_min() }} then {{ n_p if n_p else n }} end
{%- endmacro %}

{#- A share of persons: the denominator needs k, the numerator 0 or >= k. -#}
{% macro k_share(numerator, denominator, numerator_p=none, denominator_p=none) -%}
    case
        when {{ denominator }} >= {{ k_min() }}
         and ({{ numerator }} = 0 or {{ numerator }} >= {{ k_min() }})
        then {{ share_value(numerator, denominator, numerator_p, denominator_p) }}
    end
{%- endmacro %}

{#- The value of a share that passes: exact, or from the perturbed counts (at most 1). -#}
{% macro share_value(numerator, denominator, numerator_p=none, denominator_p=none) -%}
    {%- if numerator_p or denominator_p -%}
    least(1.0, cast({{ numerator_p or numerator }} as double) / {{ denominator_p or denominator }})
    {%- else -%}
    cast({{ numerator }} as double) / {{ denominator }}
    {%- endif -%}
{%- endmacro %}

{#- A share of a two-way split (new vs returning, young vs not young, ...). The share and the
    published denominator give the other part too, so both parts form a set of two cells adding
    up to a total: each part needs 0 or >= k (secondary suppression of a two-cell set). -#}
{% macro k_split_passes(numerator, denominator) -%}
    ({{ denominator }} >= {{ k_min() }}
     and not {{ k_fails(numerator) }}
     and not {{ k_fails('(' ~ denominator ~ ' - ' ~ numerator ~ ')') }})
{%- endmacro %}

{% macro k_share_split(numerator, denominator, numerator_p=none, denominator_p=none) -%}
    case
        when {{ k_split_passes(numerator, denominator) }}
        then {{ share_value(numerator, denominator, numerator_p, denominator_p) }}
    end
{%- endmacro %}

{#- A mean or ratio over persons (e.g. tickets per person): the persons need k. -#}
{% macro k_mean(total, n_persons, n_persons_p=none) -%}
    case
        when {{ n_persons }} >= {{ k_min() }}
            then cast({{ total }} as double) / {{ n_persons_p if n_persons_p else n_persons }}
    end
{%- endmacro %}

{#- A plain ratio without persons behind it (tickets, revenue). -#}
{% macro safe_ratio(numerator, denominator) -%}
    case when {{ denominator }} > 0 then cast({{ numerator }} as double) / {{ denominator }} end
{%- endmacro %}

{#- Business confidentiality: an additive total over institutions is dominated when its two
    largest contributions make up more than 85% of it (metrics.md). -#}
{% macro dominated(top2, total) -%}
    ({{ total }} > 0 and {{ top2 }} > {{ var('dominance_max_share') }} * {{ total }})
{%- endmacro %}

{#- Secondary suppression, one pass over `relation` (a CTE name). Cells are rows; a set is the
    rows sharing `set_columns`; `flag_column` says a cell is withheld. In a set where a cell is
    withheld (or where `force` is true, e.g. the set's own total is withheld), the smallest non-zero
    published cells are withheld too, until at least two cells are withheld and the withheld cells
    hold at least k persons *beyond one each*: sum(withheld) - count(withheld non-zero) >= k (or
    no non-zero cell is left to withhold). Zeros are published, so an attacker knows every withheld
    cell holds at least 1; with the set's total published, a withheld cell then lies anywhere in
    [1, sum - (count - 1)], an interval of width sum - count >= k (docs/decisions.md; the linear
    programming attack of tests/test_privacy_attacks.py). Withholding only until sum >= k left
    e.g. cells 4 and 1 (k = 5) each pinned to [1, 4].
    `units` (an expression, default 1 for a non-zero cell) is how many cells known to hold >= 1 a
    cell stands for: a withheld municipality whose PC4 areas are withheld too is known to hold at
    least one person per non-zero area, so its slack is n - (its non-zero areas), not n - 1
    (int_market_area_disclosed). The rule is then sum(withheld) - sum(units of withheld) >= k.
    `prefer` (an expression) and `prefer_set` (columns of another grouping: prefer cells whose group
    already holds a withheld cell) choose among candidates before size does, so that one pass
    disturbs other sets as little as possible. Returns `columns` and the updated `flag_column`.
    Portable SQL: window functions only. -#}
{% macro secondary_suppression(relation, columns, set_columns, n_column, flag_column, tiebreak,
                               force=none, prefer=none, prefer_set=none, units=none) -%}
{%- set set_cols = set_columns | join(', ') -%}
{%- set unit = units if units else "case when " ~ n_column ~ " > 0 then 1 else 0 end" -%}
{%- set candidate = "(not " ~ flag_column ~ " and " ~ n_column ~ " > 0)" -%}
{%- set candidate_order -%}
    {%- if prefer %}case when {{ prefer }} then 0 else 1 end, {% endif -%}
    {%- if prefer_set %}_prefer_set, {% endif -%}
    {{ n_column }}, {{ tiebreak | join(', ') }}
{%- endset -%}
select
    {%- for column in columns %}
    {{ column }},
    {%- endfor %}
    {{ flag_column }} or coalesce(
        ({{ force if force else 'false' }} or _n_withheld > 0)
        and (
            _candidate_rank <= 2 - _n_withheld
            or (_withheld_persons - _withheld_units) + (_candidates_before - _candidate_units_before)
                < {{ k_min() }}
        ),
        false
    ) as {{ flag_column }}
from (
    select
        cells.*,
        sum(case when {{ flag_column }} then 1 else 0 end)
            over (partition by {{ set_cols }}) as _n_withheld,
        sum(case when {{ flag_column }} then {{ n_column }} else 0 end)
            over (partition by {{ set_cols }}) as _withheld_persons,
        sum(case when {{ flag_column }} then {{ unit }} else 0 end)
            over (partition by {{ set_cols }}) as _withheld_units,
        case when {{ candidate }} then
            row_number() over (
                partition by {{ set_cols }}, case when {{ candidate }} then 1 else 0 end
                order by {{ candidate_order }}
            )
        end as _candidate_rank,
        case when {{ candidate }} then
            coalesce(sum({{ n_column }}) over (
                partition by {{ set_cols }}, case when {{ candidate }} then 1 else 0 end
                order by {{ candidate_order }}
                rows between unbounded preceding and 1 preceding
            ), 0)
        end as _candidates_before,
        case when {{ candidate }} then
            coalesce(sum({{ unit }}) over (
                partition by {{ set_cols }}, case when {{ candidate }} then 1 else 0 end
                order by {{ candidate_order }}
                rows between unbounded preceding and 1 preceding
            ), 0)
        end as _candidate_units_before
    from (
        select
            {{ relation }}.*
            {%- if prefer_set %},
            case
                when max(case when {{ flag_column }} then 1 else 0 end)
                    over (partition by {{ prefer_set | join(', ') }}) = 1
                then 0 else 1
            end as _prefer_set
            {%- endif %}
        from {{ relation }}
    ) as cells
) as ranked
{%- endmacro %}

{#- Catchment cuts (market_catchment): the rows (institution_code, year, `set_column`) of the
    cut sets that would narrow a withheld PC4 area or a withheld municipality below k.
    `cell_parts` has one row per withheld PC4 area and cut set: institution_code, year,
    `set_column`, block (the published municipality, or '' for all withheld municipalities
    together), gemeente_code, part (which gap between the set's cuts the area lies in) and
    n_persons. A block cut into several parts needs, in every part, two areas with k beyond one
    each; a cut of the withheld municipalities' block must leave each of them a part shared
    with another withheld municipality (docs/decisions.md, "Distance bands are no set"). -#}
{% macro unsafe_cut_sets(cell_parts, set_column) -%}
    select institution_code, year, {{ set_column }}
    from (
        select institution_code, year, {{ set_column }}, block, part,
               count(*) as n_areas, sum(n_persons) - count(*) as slack
        from {{ cell_parts }}
        group by institution_code, year, {{ set_column }}, block, part
    ) as block_parts
    group by institution_code, year, {{ set_column }}, block
    having count(*) > 1
       and min(case when n_areas >= 2 and slack >= {{ k_min() }} then 1 else 0 end) = 0
    union all
    select cells.institution_code, cells.year, cells.{{ set_column }}
    from {{ cell_parts }} as cells
    inner join (
        select institution_code, year, {{ set_column }}, part,
               count(distinct gemeente_code) as n_municipalities,
               count(*) over (partition by institution_code, year, {{ set_column }}) as n_parts
        from {{ cell_parts }}
        where block = ''
        group by institution_code, year, {{ set_column }}, part
    ) as pool_parts
        on cells.institution_code = pool_parts.institution_code
        and cells.year = pool_parts.year
        and cells.{{ set_column }} = pool_parts.{{ set_column }}
        and cells.part = pool_parts.part
    where cells.block = '' and pool_parts.n_parts > 1
    group by cells.institution_code, cells.year, cells.{{ set_column }}, cells.gemeente_code
    having max(pool_parts.n_municipalities) = 1
{%- endmacro %}

{#- The catchment radii are published on a ladder of steps, not in whole km: a radius R says
    "at least that share within R km, less within the step below", so it cuts the PC4 areas at
    R and at the step below. Whole km cut at r and r - 1, a ring that mostly holds one withheld
    area alone, so they could hardly ever be published (decisions.md, rule 3). Beyond the
    ladder's last step the steps are 100 km. -#}
{% macro radius_ladder() -%}
    {{ return([5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 100, 125, 150, 200, 250, 300]) }}
{%- endmacro %}

{#- The smallest step of the ladder at or above a distance. -#}
{% macro radius_step(distance) -%}
    case
        {%- for step in radius_ladder() %}
        when {{ distance }} <= {{ step }} then {{ step }}
        {%- endfor %}
        else ceil({{ distance }} / 100.0) * 100
    end
{%- endmacro %}

{#- The step below a step of the ladder. Below the first there is none: a radius of 5 km says
    only "at least that share within 5 km" (no distance is below 0), so it is -1, a cut that
    every area lies beyond (a cut at 0 would set the institution's own PC4 area apart). -#}
{% macro radius_step_below(radius) -%}
    {%- set ladder = radius_ladder() -%}
    case
        {%- for step in ladder %}
        when {{ radius }} = {{ step }} then {{ -1 if loop.first else ladder[loop.index0 - 1] }}
        {%- endfor %}
        else {{ radius }} - 100
    end
{%- endmacro %}
