-- Age profile (leeftijdsprofiel) per institution, year and age band: the institution's share of
-- persons (age at the first visit of the year) against the band's share of the population in
-- its catchment, and the index share / population share x 100. The bands add up to the persons
-- with a known age: a set for secondary suppression (decided in int_market_age_cells).
with cells as (
    select * from {{ ref('int_market_age_cells') }}
),

perturbed as (
    {{ with_perturbed_counts('cells', [('n_persons', 'key_persons'),
                                       ('n_known_age', 'key_known_age')]) }}
),

published as (
    select
        institution_code,
        year,
        age_band,
        band_order,
        case when not is_withheld then n_persons_p end as n_persons,
        case
            when not is_withheld
                then {{ k_share('n_persons', 'n_known_age', 'n_persons_p', 'n_known_age_p') }}
        end as share,
        catchment_radius_km,
        population_share,
        is_withheld,
        n_known_age
    from perturbed
),

final as (
    select
        institution_code,
        year,
        age_band,
        cast(band_order as integer) as band_order,
        n_persons,
        cast(share as double) as share,
        cast(catchment_radius_km as integer) as catchment_radius_km,
        cast(population_share as double) as population_share,
        cast(
            case when population_share > 0 then 100 * share / population_share end as double
        ) as share_index,
        is_withheld or {{ k_fails('n_known_age') }} as suppressed
    from published
)

select * from final
