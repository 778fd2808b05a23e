-- Disclosure control of the market areas, decided once for market_area and the benchmark's
-- share_local. An institution's persons per area form a hierarchy of sets that add up to a
-- published total, and in none may a withheld cell stand alone or be narrowed below k:
--   1. the municipalities of an institution and year (total: persons with a known area,
--      market_catchment's n_persons);
--   2. the PC4 areas of one municipality (total: that municipality's cell; when that cell is
--      withheld, its areas are withheld as a forced set: at least two, and until they hold k
--      beyond one each, or all of its non-zero areas).
-- A withheld municipality's PC4 areas are withheld too and each is known to hold >= 1, so what
-- hides the withheld municipalities is not sum(n) - (number of municipalities) but
-- sum(n) - (number of their non-zero PC4 areas): the municipality pass counts a municipality
-- as that many units (a forced area set then leaves at least min(k, n - areas) of slack, and
-- withholding more areas never lowers it). Without this, two withheld municipalities of 7
-- persons, one split over three withheld PC4 areas, pinned an area to [1, 4] (k = 5; the
-- linear programming attack of tests/test_privacy_attacks.py).
-- A municipality is withheld (primary) also when its PC4 areas cannot hide their own withheld
-- cells: some area is below k and even all its non-zero areas together hold fewer than k beyond
-- one each (e.g. 7 persons over areas of 2, 2 and 3: each would be pinned to [1, 5] beside the
-- published 7). The protection then moves up to the municipality set. When that set too ends
-- with every non-zero municipality withheld and fewer than k beyond one each,
-- market_catchment withholds its n_persons (the total of the municipalities).
-- Distance bands are no set of their own: market_catchment publishes a cumulative share only
-- when the withheld PC4 areas it cuts keep a range of k (its blocks and parts).
{%- set cell_columns = ['institution_code', 'year', 'area_level', 'area_code', 'area_name',
    'gemeente_code', 'population', 'distance_km', 'distance_band', 'n_persons', 'n_persons_p',
    'peer_level', 'peer_n_institutions', 'peer_persons', 'peer_persons_p', 'peer_top2_persons'] %}
{%- set pc4_columns = cell_columns + ['is_gemeente_withheld'] %}

with cells as (
    select * from {{ ref('int_market_area_cells') }}
),

-- non-zero PC4 areas per municipality (the units a withheld municipality stands for), and
-- whether one of them is below k
area_units as (
    select
        institution_code,
        year,
        gemeente_code,
        sum(case when n_persons > 0 then 1 else 0 end) as n_areas,
        max(case when {{ k_fails('n_persons') }} then 1 else 0 end) as has_area_below_k
    from cells
    where area_level = 'pc4'
    group by institution_code, year, gemeente_code
),

gemeente_primary as (
    select
        {%- for column in cell_columns %}
        municipality.{{ column }},
        {%- endfor %}
        case
            when municipality.n_persons > 0 then greatest(coalesce(area_units.n_areas, 1), 1)
            else 0
        end as n_areas,
        (
            {{ k_fails('municipality.n_persons') }}
            or (
                coalesce(area_units.has_area_below_k, 0) = 1
                and municipality.n_persons - area_units.n_areas < {{ k_min() }}
            )
        ) as is_withheld
    from cells as municipality
    left join area_units
        on municipality.institution_code = area_units.institution_code
        and municipality.year = area_units.year
        and municipality.area_code = area_units.gemeente_code
    where municipality.area_level = 'gemeente'
),

gemeente_final as (
    {{ secondary_suppression(
        'gemeente_primary', cell_columns,
        set_columns=['institution_code', 'year'],
        n_column='n_persons', flag_column='is_withheld', tiebreak=['area_code'],
        units='n_areas'
    ) }}
),

pc4_primary as (
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

pc4_final as (
    {{ secondary_suppression(
        'pc4_primary', pc4_columns,
        set_columns=['institution_code', 'year', 'gemeente_code'],
        n_column='n_persons', flag_column='is_withheld', tiebreak=['area_code'],
        force='is_gemeente_withheld'
    ) }}
),

final as (
    select {{ cell_columns | join(', ') }}, is_withheld from gemeente_final
    union all
    select {{ cell_columns | join(', ') }}, is_withheld from pc4_final
)

select * from final
