-- Market per institution, year and area (metrics.md, product 3): every PC4 area and every
-- municipality (area_level 'pc4' / 'gemeente'), with the institution's persons, penetration per
-- 1,000 inhabitants, the peer group's penetration there (the mean over the group's institutions),
-- the index own / peer x 100, the distance band and the potential: the extra persons the
-- institution would have with the peer penetration, max(0, peer - own) x population / 1,000.
-- Own cells follow int_market_area_disclosed; the peer penetration needs a group of >= 5
-- institutions, 0 or >= k persons behind it, and no dominance of the two largest (> 85%).
-- Open years show perturbed counts (peer: the sum of the members' perturbed counts); the
-- decisions to withhold are taken on the exact counts.
with cells as (
    select * from {{ ref('int_market_area_disclosed') }}
),

rates as (
    select
        cells.*,
        case
            when not is_withheld and population > 0
                then 1000.0 * n_persons_p / population
        end as penetration,
        case
            when peer_n_institutions >= {{ var('peer_min_institutions') }}
                and not {{ k_fails('peer_persons') }}
                and not {{ dominated('peer_top2_persons', 'peer_persons') }}
                and population > 0
                then 1000.0 * peer_persons_p / (peer_n_institutions * population)
        end as peer_penetration
    from cells
),

final as (
    select
        institution_code,
        year,
        area_level,
        area_code,
        area_name,
        gemeente_code,
        cast(population as bigint) as population,
        cast(distance_km as double) as distance_km,
        distance_band,
        case when not is_withheld then n_persons_p end as n_persons,
        cast(penetration as double) as penetration,
        peer_level,
        cast(peer_penetration as double) as peer_penetration,
        cast(
            case when peer_penetration > 0 then 100 * penetration / peer_penetration end
            as double
        ) as penetration_index,
        cast(
            case
                when peer_penetration > penetration
                    then (peer_penetration - penetration) * population / 1000.0
                when peer_penetration is not null and penetration is not null then 0
            end as double
        ) as potential,
        is_withheld as suppressed
    from rates
)

select * from final
