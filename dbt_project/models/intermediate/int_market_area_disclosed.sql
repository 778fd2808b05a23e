-- Disclosure control of the market areas, decided once for market_area and the benchmark's
-- share_local. An institution's persons per area form three kinds of sets that add up to a
-- published total, and in none may a withheld cell stand alone:
--   1. the municipalities of an institution and year (total: persons with a known area);
--   2. the PC4 areas of one municipality (total: that municipality's cell; when that cell is
--      withheld, at least two of its PC4 areas are withheld too, else their sum would give it);
--   3. the PC4 areas of one distance band (total: persons in the band, which market_catchment's
--      shares reveal).
-- Municipalities are decided first; then passes over PC4 areas alternate between sets 2 and 3,
-- each preferring cells in a group of the other kind that already holds a withheld cell. The
-- generic test no_lone_suppressed_cell checks the outcome on every set.
{%- set cell_columns = ['institution_code', 'year', 'area_level', 'area_code', 'area_name',
    'gemeente_code', 'population', 'distance_km', 'distance_band', 'n_persons', 'peer_level',
    'peer_n_institutions', 'peer_persons', 'peer_top2_persons'] %}
{%- set pc4_columns = cell_columns + ['is_gemeente_withheld'] %}
{%- set rounds = 3 %}

with cells as (
    select * from {{ ref('int_market_area_cells') }}
),

gemeente_primary as (
    select
        {{ cell_columns | join(', ') }},
        {{ k_fails('n_persons') }} as is_withheld
    from cells
    where area_level = 'gemeente'
),

gemeente_final as (
    {{ secondary_suppression(
        'gemeente_primary', cell_columns,
        set_columns=['institution_code', 'year'],
        n_column='n_persons', flag_column='is_withheld', tiebreak=['area_code']
    ) }}
),

pc4_pass_0 as (
    select
        {%- for column in cell_columns %}
        pc4.{{ column }},
        {%- endfor %}
        coalesce(municipality.is_withheld, false) as is_gemeente_withheld,
        {{ k_fails('pc4.n_persons') }} as is_withheld
    from cells as pc4
    left join gemeente_final as municipality
        on pc4.institution_code = municipality.institution_code
        and pc4.year = municipality.year
        and pc4.gemeente_code = municipality.area_code
    where pc4.area_level = 'pc4'
),

{%- for round in range(rounds) %}

pc4_pass_{{ 2 * round + 1 }} as (
    {{ secondary_suppression(
        'pc4_pass_' ~ (2 * round), pc4_columns,
        set_columns=['institution_code', 'year', 'gemeente_code'],
        n_column='n_persons', flag_column='is_withheld', tiebreak=['area_code'],
        force='is_gemeente_withheld',
        prefer_set=['institution_code', 'year', 'distance_band']
    ) }}
),

pc4_pass_{{ 2 * round + 2 }} as (
    {{ secondary_suppression(
        'pc4_pass_' ~ (2 * round + 1), pc4_columns,
        set_columns=['institution_code', 'year', 'distance_band'],
        n_column='n_persons', flag_column='is_withheld', tiebreak=['area_code'],
        prefer_set=['institution_code', 'year', 'gemeente_code']
    ) }}
),
{%- endfor %}

pc4_final as (
    {{ secondary_suppression(
        'pc4_pass_' ~ (2 * rounds), pc4_columns,
        set_columns=['institution_code', 'year', 'gemeente_code'],
        n_column='n_persons', flag_column='is_withheld', tiebreak=['area_code'],
        force='is_gemeente_withheld',
        prefer_set=['institution_code', 'year', 'distance_band']
    ) }}
),

final as (
    select {{ cell_columns | join(', ') }}, is_withheld from gemeente_final
    union all
    select {{ cell_columns | join(', ') }}, is_withheld from pc4_final
)

select * from final
