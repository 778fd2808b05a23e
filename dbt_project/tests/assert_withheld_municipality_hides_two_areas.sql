-- A withheld municipality in market_area must not be the sum of published PC4 areas: at least
-- two of its non-zero PC4 areas are withheld too, or all of them when it has only one.
with areas as (
    select * from {{ ref('market_area') }}
),

municipalities as (
    select institution_code, year, area_code as gemeente_code
    from areas
    where area_level = 'gemeente' and suppressed
),

children as (
    select
        municipalities.institution_code,
        municipalities.year,
        municipalities.gemeente_code,
        sum(case when pc4.n_persons is null then 1 else 0 end) as n_withheld,
        sum(case when pc4.n_persons > 0 then 1 else 0 end) as n_published_non_zero
    from municipalities
    inner join areas as pc4
        on municipalities.institution_code = pc4.institution_code
        and municipalities.year = pc4.year
        and municipalities.gemeente_code = pc4.gemeente_code
        and pc4.area_level = 'pc4'
    group by municipalities.institution_code, municipalities.year, municipalities.gemeente_code
)

select *
from children
where n_withheld = 0 or (n_withheld = 1 and n_published_non_zero > 0)
