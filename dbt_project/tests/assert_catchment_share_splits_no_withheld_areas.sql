{{ config(meta={'dagster': {'ref': {'name': 'market_catchment'}}}) }}
-- A published cumulative catchment share (persons within 10, 25, 50 km) is the total of the PC4
-- areas within its radius. The withheld PC4 areas market_area withholds fall into blocks whose
-- withheld total is known beside it: those of one published municipality, and those of all the
-- withheld municipalities together. The published radii cut a block into parts (the areas
-- between two published radii); each cut part becomes a set with a known total. A part must
-- then hold at least two withheld areas with k persons beyond one each, else the linear
-- programming attack of tests/test_privacy_attacks.py narrows an area below k. And a withheld
-- municipality must share a part with another one when their block is cut, else its total is
-- given away.
-- Fails with the institution-year and the block of every share set that breaks this.
with catchment as (
    select * from {{ ref('market_catchment') }}
),

areas as (
    select * from {{ ref('int_market_area_disclosed') }}
),

withheld as (
    select
        pc4.institution_code,
        pc4.year,
        case when municipality.is_withheld then 'withheld municipalities'
             else pc4.gemeente_code end as block,
        pc4.gemeente_code,
        case pc4.distance_band
            when '0-10' then 10 when '10-25' then 25 when '25-50' then 50
        end as within_km,
        pc4.n_persons
    from areas as pc4
    inner join areas as municipality
        on pc4.institution_code = municipality.institution_code
        and pc4.year = municipality.year
        and pc4.gemeente_code = municipality.area_code
        and municipality.area_level = 'gemeente'
    where pc4.area_level = 'pc4' and pc4.is_withheld
),

-- the part of an area: how many published radii it lies beyond (no distance: beyond all)
area_parts as (
    select
        withheld.institution_code,
        withheld.year,
        withheld.block,
        (case when catchment.share_within_10km is not null
                   and coalesce(withheld.within_km, 1000) > 10 then 1 else 0 end)
        + (case when catchment.share_within_25km is not null
                     and coalesce(withheld.within_km, 1000) > 25 then 1 else 0 end)
        + (case when catchment.share_within_50km is not null
                     and coalesce(withheld.within_km, 1000) > 50 then 1 else 0 end) as part,
        withheld.gemeente_code,
        withheld.n_persons
    from withheld
    inner join catchment
        on withheld.institution_code = catchment.institution_code
        and withheld.year = catchment.year
),

parts as (
    select institution_code, year, block, part, count(*) as n_areas, sum(n_persons) as n_persons
    from area_parts
    group by institution_code, year, block, part
),

-- the withheld municipalities per part of their block
pool_parts as (
    select institution_code, year, part, count(distinct gemeente_code) as n_municipalities
    from area_parts
    where block = 'withheld municipalities'
    group by institution_code, year, part
),

pool_cut as (
    select institution_code, year
    from pool_parts
    group by institution_code, year
    having count(*) > 1
)

select institution_code, year, block
from parts
group by institution_code, year, block
having count(*) > 1
   and min(case when n_areas >= 2 and n_persons - n_areas >= {{ k_min() }} then 1 else 0 end) = 0

union all

-- a withheld municipality alone in every part it has areas in: its total is given away
select area_parts.institution_code, area_parts.year, area_parts.gemeente_code as block
from area_parts
inner join pool_parts
    on area_parts.institution_code = pool_parts.institution_code
    and area_parts.year = pool_parts.year
    and area_parts.part = pool_parts.part
inner join pool_cut
    on area_parts.institution_code = pool_cut.institution_code
    and area_parts.year = pool_cut.year
where area_parts.block = 'withheld municipalities'
group by area_parts.institution_code, area_parts.year, area_parts.gemeente_code
having max(pool_parts.n_municipalities) = 1
