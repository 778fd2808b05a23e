-- Catchment (verzorgingsgebied) per institution and year: the share of persons living within
-- 10, 25 and 50 km, and the radius holding 60%, 80% and 90% of them (rounded up to a step of
-- 5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 100, 125, 150, 200, 250, 300 km, then 100s: the macro
-- radius_ladder).
-- The distance bands 0-10, 10-25, 25-50, 50+ add up to n_persons: they are suppressed as a set,
-- and a cumulative share is published only when it does not split the withheld bands (else the
-- difference of two shares would give a withheld band away), both it and its rest hold k, and
-- it does not narrow a PC4 area market_area withholds (withheld_cells below: the shares are
-- published for the largest set of radii that keeps every withheld area's range k wide). The
-- radii holding 60%, 80% and 90% cut the areas too and follow the same rule (percentile_sets).
-- n_persons is the total of market_area's municipalities: it is withheld (with the shares)
-- when every non-zero municipality is withheld and their withheld PC4 areas hold fewer than k
-- persons beyond one each (else it would pin them; int_market_area_disclosed).
{%- set bands = [('0-10', 'n_0_10', 10), ('10-25', 'n_10_25', 25), ('25-50', 'n_25_50', 50),
                 ('50+', 'n_50_plus', 1000000)] %}

with catchment as (
    select * from {{ ref('int_market_catchment') }}
),

-- The PC4 areas market_area withholds, in blocks whose withheld total is already known: the
-- withheld areas of one published municipality (its cell minus its published areas), and the
-- withheld areas of all withheld municipalities together (n_persons minus the published
-- municipalities). A published cumulative share adds one more total: the persons within its
-- radius. Blocks whose withheld areas lie on one side of every published radius gain nothing
-- from it (their side's total was known). A block with withheld areas on both sides is split:
-- each part (the areas between two published radii) becomes a set with a known total. Such a
-- part must hold at least two areas with k persons beyond one each: then every area in it keeps
-- a range of k even when all other totals are known (one area alone would be pinned). An area
-- without a distance counts as beyond every radius.
withheld_cells as (
    select
        pc4.institution_code,
        pc4.year,
        case when municipality.is_withheld then '' else pc4.gemeente_code end as block,
        pc4.gemeente_code,
        pc4.distance_km,
        case pc4.distance_band
            when '0-10' then 1 when '10-25' then 2 when '25-50' then 3 else 4
        end as band,
        pc4.n_persons
    from {{ ref('int_market_area_disclosed') }} as pc4
    inner join {{ ref('int_market_area_disclosed') }} as municipality
        on pc4.institution_code = municipality.institution_code
        and pc4.year = municipality.year
        and pc4.gemeente_code = municipality.area_code
        and municipality.area_level = 'gemeente'
    where pc4.area_level = 'pc4' and pc4.is_withheld
),

-- the sets of radii whose shares may be published together, most first (then the wider radii:
-- their shares hold more persons)
radius_sets as (
    select * from (values
        (1, true, true, true),
        (2, false, true, true),
        (3, true, false, true),
        (4, true, true, false),
        (5, false, false, true),
        (6, false, true, false),
        (7, true, false, false),
        (8, false, false, false)
    ) as sets (rank, has_10, has_25, has_50)
),

-- per set of radii, each withheld area's part of its block: how many radii of the set it lies
-- beyond
cell_parts as (
    select
        cells.institution_code,
        cells.year,
        radius_sets.rank,
        cells.block,
        (case when radius_sets.has_10 and cells.band > 1 then 1 else 0 end)
            + (case when radius_sets.has_25 and cells.band > 2 then 1 else 0 end)
            + (case when radius_sets.has_50 and cells.band > 3 then 1 else 0 end) as part,
        cells.gemeente_code,
        cells.distance_km,
        cells.n_persons
    from withheld_cells as cells
    cross join radius_sets
),

-- sets of radii that would narrow a withheld area or municipality below k
unsafe_radius_sets as (
    {{ unsafe_cut_sets('cell_parts', 'rank') }}
),

-- the withheld municipalities' withheld PC4 areas: persons beyond one each, and whether a
-- non-zero municipality is published
municipality_slack as (
    select
        municipality.institution_code,
        municipality.year,
        max(case when not municipality.is_withheld and municipality.n_persons > 0 then 1 else 0 end)
            as has_published_municipality,
        sum(case when pc4.is_withheld and pc4.n_persons > 0 then pc4.n_persons - 1 else 0 end)
            as withheld_slack
    from {{ ref('int_market_area_disclosed') }} as municipality
    left join {{ ref('int_market_area_disclosed') }} as pc4
        on municipality.institution_code = pc4.institution_code
        and municipality.year = pc4.year
        and municipality.area_code = pc4.gemeente_code
        and pc4.area_level = 'pc4'
        and municipality.is_withheld
    where municipality.area_level = 'gemeente'
    group by municipality.institution_code, municipality.year
),

band_cells as (
    {%- for band, column, upper in bands %}
    select
        institution_code,
        year,
        '{{ band }}' as distance_band,
        {{ upper }} as upper_km,
        {{ column }} as n_persons,
        {{ k_fails(column) }} as is_withheld
    from catchment
    {%- if not loop.last %}
    union all{% endif %}
    {%- endfor %}
),

band_suppression as (
    {{ secondary_suppression(
        'band_cells', ['institution_code', 'year', 'distance_band', 'upper_km', 'n_persons'],
        set_columns=['institution_code', 'year'],
        n_column='n_persons', flag_column='is_withheld', tiebreak=['upper_km']
    ) }}
),

withheld_bands as (
    select
        institution_code,
        year
        {%- for radius in [10, 25, 50] %},
        sum(case when is_withheld and upper_km <= {{ radius }} then 1 else 0 end)
            as n_withheld_within_{{ radius }},
        sum(case when is_withheld and upper_km > {{ radius }} then 1 else 0 end)
            as n_withheld_beyond_{{ radius }}
        {%- endfor %}
    from band_suppression
    group by institution_code, year
),

cumulative as (
    select
        catchment.*,
        catchment.n_0_10 as n_within_10,
        catchment.n_0_10 + catchment.n_10_25 as n_within_25,
        catchment.n_0_10 + catchment.n_10_25 + catchment.n_25_50 as n_within_50,
        withheld_bands.n_withheld_within_10,
        withheld_bands.n_withheld_beyond_10,
        withheld_bands.n_withheld_within_25,
        withheld_bands.n_withheld_beyond_25,
        withheld_bands.n_withheld_within_50,
        withheld_bands.n_withheld_beyond_50,
        coalesce(
            catchment.n_persons > 0
            and municipality_slack.has_published_municipality = 0
            and municipality_slack.withheld_slack < {{ k_min() }},
            false
        ) as is_total_withheld
    from catchment
    inner join withheld_bands
        on catchment.institution_code = withheld_bands.institution_code
        and catchment.year = withheld_bands.year
    left join municipality_slack
        on catchment.institution_code = municipality_slack.institution_code
        and catchment.year = municipality_slack.year
),

perturbed as (
    {{ with_perturbed_counts('cumulative', [
        ('n_persons', 'key_persons'),
        ('n_within_10', 'key_within_10'),
        ('n_within_25', 'key_within_25'),
        ('n_within_50', 'key_within_50'),
    ]) }}
),

-- each share as the distance bands and its two-way split allow it, before the withheld areas
candidate as (
    select
        institution_code,
        year,
        case when not is_total_withheld then {{ k_count('n_persons', 'n_persons_p') }} end
            as n_persons
        {%- for radius in [10, 25, 50] %},
        case
            when not is_total_withheld
                and not (n_withheld_within_{{ radius }} > 0 and n_withheld_beyond_{{ radius }} > 0)
                then {{ k_share_split('n_within_' ~ radius, 'n_persons',
                                      'n_within_' ~ radius ~ '_p', 'n_persons_p') }}
        end as share_within_{{ radius }}km
        {%- endfor %}
        {%- for pct in [60, 80, 90] %},
        case when n_persons >= {{ k_min() }} then {{ radius_step('radius_' ~ pct ~ '_km') }} end
            as radius_{{ pct }}_km
        {%- endfor %},
        n_persons as n_persons_raw
    from perturbed
),

-- the first set of radii (radius_sets' order) whose shares all pass above and that narrows no
-- withheld area; the empty set (rank 8) always qualifies
qualifying as (
    select
        candidate.institution_code,
        candidate.year,
        radius_sets.rank,
        radius_sets.has_10,
        radius_sets.has_25,
        radius_sets.has_50,
        row_number() over (
            partition by candidate.institution_code, candidate.year order by radius_sets.rank
        ) as preference
    from candidate
    cross join radius_sets
    left join unsafe_radius_sets as unsafe
        on candidate.institution_code = unsafe.institution_code
        and candidate.year = unsafe.year
        and radius_sets.rank = unsafe.rank
    where unsafe.rank is null
        {%- for radius in [10, 25, 50] %}
        and (not radius_sets.has_{{ radius }} or candidate.share_within_{{ radius }}km is not null)
        {%- endfor %}
),

chosen as (
    select institution_code, year, rank, has_10, has_25, has_50
    from qualifying
    where preference = 1
),

-- The radii holding 60%, 80% and 90% of the persons cut the PC4 areas too: a radius of r km
-- (a step of radius_ladder) says that at least that share lives within r km and less within
-- the step below, inequalities that, beside the areas' published distances, narrowed a
-- withheld area (k = 5, radii then in whole km: withheld areas of 10 at 3.5 km and 2 at 30 km
-- in a municipality of 12, another with 8 at 1 km and 10 at 40 km, 30 persons: a radius of
-- 4 km pinned the 10 to [10, 11]). So r and the step below are cuts like the shares' radii,
-- and the radii are published for the largest set whose cuts, with those of the chosen shares,
-- pass the same rule. (Whole km cut at r and r - 1: that ring mostly holds a single withheld
-- area, so the radii were hardly ever published.)
-- (the same eight sets of three, in the same order)
percentile_sets as (
    select rank as percentile_rank, has_10 as has_60, has_25 as has_80, has_50 as has_90
    from radius_sets
),

-- each area's part among the chosen shares' cuts (cell_parts), cut further by the radii's
percentile_cell_parts as (
    select
        cells.institution_code,
        cells.year,
        percentile_sets.percentile_rank,
        cells.block,
        cells.part
            {%- for pct in [60, 80, 90] %}
            + (case when percentile_sets.has_{{ pct }}
                    and coalesce(cells.distance_km, 1e9) > candidate.radius_{{ pct }}_km
                    then 1 else 0 end)
            + (case when percentile_sets.has_{{ pct }}
                    and coalesce(cells.distance_km, 1e9)
                        > {{ radius_step_below('candidate.radius_' ~ pct ~ '_km') }}
                    then 1 else 0 end)
            {%- endfor %} as part,
        cells.gemeente_code,
        cells.n_persons
    from cell_parts as cells
    inner join chosen
        on cells.institution_code = chosen.institution_code
        and cells.year = chosen.year
        and cells.rank = chosen.rank
    inner join candidate
        on cells.institution_code = candidate.institution_code
        and cells.year = candidate.year
    cross join percentile_sets
),

unsafe_percentile_sets as (
    {{ unsafe_cut_sets('percentile_cell_parts', 'percentile_rank') }}
),

percentile_qualifying as (
    select
        candidate.institution_code,
        candidate.year,
        percentile_sets.has_60,
        percentile_sets.has_80,
        percentile_sets.has_90,
        row_number() over (
            partition by candidate.institution_code, candidate.year
            order by percentile_sets.percentile_rank
        ) as preference
    from candidate
    cross join percentile_sets
    left join unsafe_percentile_sets as unsafe
        on candidate.institution_code = unsafe.institution_code
        and candidate.year = unsafe.year
        and percentile_sets.percentile_rank = unsafe.percentile_rank
    where unsafe.percentile_rank is null
),

percentile_chosen as (
    select institution_code, year, has_60, has_80, has_90
    from percentile_qualifying
    where preference = 1
),

published as (
    select
        candidate.institution_code,
        candidate.year,
        candidate.n_persons
        {%- for radius in [10, 25, 50] %},
        case when chosen.has_{{ radius }} then candidate.share_within_{{ radius }}km end
            as share_within_{{ radius }}km
        {%- endfor %}
        {%- for pct in [60, 80, 90] %},
        case when percentile_chosen.has_{{ pct }} then candidate.radius_{{ pct }}_km end
            as radius_{{ pct }}_km
        {%- endfor %},
        (candidate.radius_60_km is not null and not percentile_chosen.has_60)
            or (candidate.radius_80_km is not null and not percentile_chosen.has_80)
            or (candidate.radius_90_km is not null and not percentile_chosen.has_90)
            as is_radius_withheld,
        candidate.n_persons_raw
    from candidate
    inner join chosen
        on candidate.institution_code = chosen.institution_code
        and candidate.year = chosen.year
    inner join percentile_chosen
        on candidate.institution_code = percentile_chosen.institution_code
        and candidate.year = percentile_chosen.year
),

final as (
    select
        institution_code,
        year,
        n_persons,
        cast(share_within_10km as double) as share_within_10km,
        cast(share_within_25km as double) as share_within_25km,
        cast(share_within_50km as double) as share_within_50km,
        cast(radius_60_km as double) as radius_60_km,
        cast(radius_80_km as double) as radius_80_km,
        cast(radius_90_km as double) as radius_90_km,
        coalesce(
            n_persons_raw > 0 and (
                n_persons is null
                or share_within_10km is null
                or share_within_25km is null
                or share_within_50km is null
                or is_radius_withheld
            ),
            false
        ) as suppressed
    from published
)

select * from final
