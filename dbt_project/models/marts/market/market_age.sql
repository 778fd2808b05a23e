-- Age profile (leeftijdsprofiel) per institution, year and age band: the institution's share of
-- persons (age at the first visit of the year) against the band's share of the population in
-- its catchment, and the index share / population share x 100. The bands add up to the persons
-- with a known age: a set for secondary suppression (decided in int_market_age_cells).
-- The catchment is the smallest of 10, 25 and 50 km whose share in market_catchment is published
-- and holds 80% of the persons, else the whole country. It is read off the published shares, so
-- it tells nothing they do not: taken from the persons themselves, "80% within 25 km, fewer
-- within 10" cut the PC4 areas market_area withholds at 10 and 25 km even where market_catchment
-- withholds those shares for that reason (and the population compared with gives the radius
-- away, so withholding the column alone would not do).
-- CBS counts inhabitants in the bands 0-14, 15-24, 25-44, 45-64, 65+; a CBS band is spread over
-- the metrics' bands evenly per year of age (docs/metrics.md): 0-11 = 12/15 of 0-14; 12-17 =
-- 3/15 of 0-14 + 3/10 of 15-24; 18-29 = 7/10 of 15-24 + 5/20 of 25-44; 30-44 = 15/20 of 25-44;
-- 45-64 and 65+ as they are.
with cells as (
    select * from {{ ref('int_market_age_cells') }}
),

catchment as (
    select
        institution_code,
        year,
        case
            when share_within_10km >= 0.8 then 10
            when share_within_25km >= 0.8 then 25
            when share_within_50km >= 0.8 then 50
        end as catchment_radius_km
    from {{ ref('market_catchment') }}
),

distances as (
    select * from {{ ref('int_institution_area_distances') }}
    where area_level = 'pc4'
),

areas as (
    select * from {{ ref('dim_area') }}
),

catchment_population as (
    select
        catchment.institution_code,
        catchment.year,
        catchment.catchment_radius_km,
        sum(areas.population_0_14) as population_0_14,
        sum(areas.population_15_24) as population_15_24,
        sum(areas.population_25_44) as population_25_44,
        sum(areas.population_45_64) as population_45_64,
        sum(areas.population_65_plus) as population_65_plus
    from catchment
    cross join areas
    left join distances
        on catchment.institution_code = distances.institution_code
        and areas.pc4 = distances.area_code
    where catchment.catchment_radius_km is null
        or distances.distance_km <= catchment.catchment_radius_km
    group by catchment.institution_code, catchment.year, catchment.catchment_radius_km
),

perturbed as (
    {{ with_perturbed_counts('cells', [('n_persons', 'key_persons'),
                                       ('n_known_age', 'key_known_age')]) }}
),

published as (
    select
        perturbed.institution_code,
        perturbed.year,
        perturbed.age_band,
        perturbed.band_order,
        case when not perturbed.is_withheld then perturbed.n_persons_p end as n_persons,
        case
            when not perturbed.is_withheld
                then {{ k_share('perturbed.n_persons', 'perturbed.n_known_age',
                                'perturbed.n_persons_p', 'perturbed.n_known_age_p') }}
        end as share,
        population.catchment_radius_km,
        case perturbed.age_band
            when '0-11' then population.population_0_14 * 12.0 / 15
            when '12-17'
                then population.population_0_14 * 3.0 / 15 + population.population_15_24 * 3.0 / 10
            when '18-29'
                then population.population_15_24 * 7.0 / 10 + population.population_25_44 * 5.0 / 20
            when '30-44' then population.population_25_44 * 15.0 / 20
            when '45-64' then population.population_45_64 * 1.0
            when '65+' then population.population_65_plus * 1.0
        end as population,
        population.population_0_14 + population.population_15_24 + population.population_25_44
            + population.population_45_64 + population.population_65_plus as population_total,
        perturbed.is_withheld,
        perturbed.n_known_age
    from perturbed
    left join catchment_population as population
        on perturbed.institution_code = population.institution_code
        and perturbed.year = population.year
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
        cast({{ safe_ratio('population', 'population_total') }} as double) as population_share,
        cast(
            case
                when population > 0 then 100 * share * population_total / population
            end as double
        ) as share_index,
        is_withheld or {{ k_fails('n_known_age') }} as suppressed
    from published
)

select * from final
