{{ config(meta={'dagster': {'ref': {'name': 'market_catchment'}}}) }}
-- The withheld municipalities of an institution-year add up to a published total (persons with
-- a known area less the published municipalities), and each of their withheld PC4 areas is
-- known to hold >= 1. Their withheld areas must hold k persons beyond one each
-- (sum(n - 1) >= k), or every non-zero municipality is withheld and so is their total,
-- market_catchment's n_persons: else a linear programme over the published numbers pins an
-- area to a range narrower than k (tests/test_privacy_attacks.py). Decided on exact counts, so
-- checked on int_market_area_disclosed.
with cells as (
    select * from {{ ref('int_market_area_disclosed') }}
),

municipalities as (
    select
        institution_code,
        year,
        sum(case when not is_withheld and n_persons > 0 then 1 else 0 end) as n_published_non_zero,
        sum(case when is_withheld then 1 else 0 end) as n_withheld
    from cells
    where area_level = 'gemeente'
    group by institution_code, year
),

slack as (
    select
        pc4.institution_code,
        pc4.year,
        sum(pc4.n_persons - 1) as slack
    from cells as pc4
    inner join cells as municipality
        on pc4.institution_code = municipality.institution_code
        and pc4.year = municipality.year
        and pc4.gemeente_code = municipality.area_code
        and municipality.area_level = 'gemeente'
        and municipality.is_withheld
    where pc4.area_level = 'pc4' and pc4.is_withheld and pc4.n_persons > 0
    group by pc4.institution_code, pc4.year
)

select municipalities.institution_code, municipalities.year, slack.slack
from municipalities
left join slack
    on municipalities.institution_code = slack.institution_code
    and municipalities.year = slack.year
left join {{ ref('market_catchment') }} as catchment
    on municipalities.institution_code = catchment.institution_code
    and municipalities.year = catchment.year
where municipalities.n_withheld > 0
  and (municipalities.n_published_non_zero > 0 or catchment.n_persons is not null)
  and coalesce(slack.slack, 0) < {{ k_min() }}
