-- Catchment (verzorgingsgebied) per institution and year: the share of persons living within
-- 10, 25 and 50 km, and the radius holding 60%, 80% and 90% of them (rounded up to whole km).
-- The distance bands 0-10, 10-25, 25-50, 50+ add up to n_persons: they are suppressed as a set,
-- and a cumulative share is published only when it does not split the withheld bands (else the
-- difference of two shares would give a withheld band away), both it and its rest hold k, and
-- the PC4 areas market_area withholds for the institution-year do not lie on both sides of its
-- radius. n_persons is the total of market_area's municipalities: it is withheld (with the shares)
-- when every non-zero municipality is withheld and their withheld PC4 areas hold fewer than k
-- persons beyond one each (else it would pin them; int_market_area_disclosed).
{%- set bands = [('0-10', 'n_0_10', 10), ('10-25', 'n_10_25', 25), ('25-50', 'n_25_50', 50),
                 ('50+', 'n_50_plus', 1000000)] %}

with catchment as (
    select * from {{ ref('int_market_catchment') }}
),

-- PC4 areas market_area withholds, inside and beyond each radius. A cumulative share is the
-- total of the PC4 areas within its radius: beside the municipalities (totals of other PC4
-- areas) it would narrow a withheld area when withheld areas lie on both sides (the linear
-- programming attack, tests/test_privacy_attacks.py). With all withheld areas on one side it
-- adds nothing: the total on the side without one is a sum of published areas, the other side
-- is n_persons minus it. An area without a distance counts as beyond (on the safe side).
withheld_areas as (
    select
        institution_code,
        year
        {%- for radius, inside in [(10, "'0-10'"), (25, "'0-10', '10-25'"),
                                   (50, "'0-10', '10-25', '25-50'")] %},
        sum(case when is_withheld and distance_band in ({{ inside }}) then 1 else 0 end)
            as n_withheld_areas_within_{{ radius }},
        sum(case when is_withheld and (distance_band is null or distance_band not in ({{ inside }}))
            then 1 else 0 end) as n_withheld_areas_beyond_{{ radius }}
        {%- endfor %}
    from {{ ref('int_market_area_disclosed') }}
    where area_level = 'pc4'
    group by institution_code, year
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
        {%- for radius in [10, 25, 50] %}
        coalesce(withheld_areas.n_withheld_areas_within_{{ radius }}, 0)
            as n_withheld_areas_within_{{ radius }},
        coalesce(withheld_areas.n_withheld_areas_beyond_{{ radius }}, 0)
            as n_withheld_areas_beyond_{{ radius }}{{ ',' if not loop.last }}
        {%- endfor %},
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
    left join withheld_areas
        on catchment.institution_code = withheld_areas.institution_code
        and catchment.year = withheld_areas.year
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

published as (
    select
        institution_code,
        year,
        case when not is_total_withheld then {{ k_count('n_persons', 'n_persons_p') }} end
            as n_persons
        {%- for radius in [10, 25, 50] %},
        case
            when not is_total_withheld
                and not (n_withheld_within_{{ radius }} > 0 and n_withheld_beyond_{{ radius }} > 0)
                and not (n_withheld_areas_within_{{ radius }} > 0
                         and n_withheld_areas_beyond_{{ radius }} > 0)
                then {{ k_share_split('n_within_' ~ radius, 'n_persons',
                                      'n_within_' ~ radius ~ '_p', 'n_persons_p') }}
        end as share_within_{{ radius }}km
        {%- endfor %}
        {%- for pct in [60, 80, 90] %},
        case when n_persons >= {{ k_min() }} then ceil(radius_{{ pct }}_km) end
            as radius_{{ pct }}_km
        {%- endfor %},
        n_persons as n_persons_raw
    from perturbed
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
            ),
            false
        ) as suppressed
    from published
)

select * from final
