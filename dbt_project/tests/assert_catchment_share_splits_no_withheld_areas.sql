{{ config(meta={'dagster': {'ref': {'name': 'market_catchment'}}}) }}
-- A published cumulative catchment share (persons within 10, 25, 50 km) is the total of the PC4
-- areas within its radius. When market_area withholds PC4 areas of the institution-year on both
-- sides of the radius, that total narrows them beside the municipalities (the linear
-- programming attack of tests/test_privacy_attacks.py): such a share must be withheld.
with areas as (
    select * from {{ ref('market_area') }}
    where area_level = 'pc4'
),

catchment as (
    select * from {{ ref('market_catchment') }}
),

sides as (
    select
        institution_code,
        year
        {%- for radius, inside in [(10, "'0-10'"), (25, "'0-10', '10-25'"),
                                   (50, "'0-10', '10-25', '25-50'")] %},
        sum(case when suppressed and distance_band in ({{ inside }}) then 1 else 0 end)
            as within_{{ radius }},
        sum(case when suppressed and (distance_band is null or distance_band not in ({{ inside }}))
            then 1 else 0 end) as beyond_{{ radius }}
        {%- endfor %}
    from areas
    group by institution_code, year
)

select catchment.institution_code, catchment.year
from catchment
inner join sides
    on catchment.institution_code = sides.institution_code
    and catchment.year = sides.year
where (catchment.share_within_10km is not null and sides.within_10 > 0 and sides.beyond_10 > 0)
   or (catchment.share_within_25km is not null and sides.within_25 > 0 and sides.beyond_25 > 0)
   or (catchment.share_within_50km is not null and sides.within_50 > 0 and sides.beyond_50 > 0)
