-- Catchment (verzorgingsgebied) per institution and year: the share of persons living within
-- 10, 25 and 50 km, and the radius holding 60%, 80% and 90% of them (rounded up to whole km).
-- The distance bands 0-10, 10-25, 25-50, 50+ add up to n_persons: they are suppressed as a set,
-- and a cumulative share is published only when it does not split the withheld bands (else the
-- difference of two shares would give a withheld band away) and both it and its rest hold k.
{%- set bands = [('0-10', 'n_0_10', 10), ('10-25', 'n_10_25', 25), ('25-50', 'n_25_50', 50),
                 ('50+', 'n_50_plus', 1000000)] %}

with catchment as (
    select * from {{ ref('int_market_catchment') }}
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
        withheld_bands.n_withheld_beyond_50
    from catchment
    inner join withheld_bands
        on catchment.institution_code = withheld_bands.institution_code
        and catchment.year = withheld_bands.year
),

published as (
    select
        institution_code,
        year,
        {{ k_count('n_persons') }} as n_persons
        {%- for radius in [10, 25, 50] %},
        case
            when not (n_withheld_within_{{ radius }} > 0 and n_withheld_beyond_{{ radius }} > 0)
                then {{ k_share_split('n_within_' ~ radius, 'n_persons') }}
        end as share_within_{{ radius }}km
        {%- endfor %}
        {%- for pct in [60, 80, 90] %},
        case when n_persons >= {{ k_min() }} then ceil(radius_{{ pct }}_km) end
            as radius_{{ pct }}_km
        {%- endfor %},
        n_persons as n_persons_raw
    from cumulative
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
