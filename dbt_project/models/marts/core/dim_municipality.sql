-- Municipalities (gemeenten) from the PC4 reference: population summed, centroid weighted by
-- population (the plain mean of the PC4 centroids where population is unknown).
with areas as (
    select * from {{ ref('dim_area') }}
),

municipalities as (
    select
        gemeente_code,
        max(gemeente_naam) as gemeente_naam,
        max(provincie) as provincie,
        count(*) as n_pc4_areas,
        sum(population) as population,
        sum(population_0_14) as population_0_14,
        sum(population_15_24) as population_15_24,
        sum(population_25_44) as population_25_44,
        sum(population_45_64) as population_45_64,
        sum(population_65_plus) as population_65_plus,
        sum(case when population > 0 then population else 0 end) as weight,
        sum(case when population > 0 then lat * population else 0 end) as weighted_lat,
        sum(case when population > 0 then lon * population else 0 end) as weighted_lon,
        avg(lat) as mean_lat,
        avg(lon) as mean_lon
    from areas
    where gemeente_code is not null
    group by gemeente_code
),

final as (
    select
        gemeente_code,
        gemeente_naam,
        provincie,
        n_pc4_areas,
        case when weight > 0 then weighted_lat / weight else mean_lat end as lat,
        case when weight > 0 then weighted_lon / weight else mean_lon end as lon,
        population,
        population_0_14,
        population_15_24,
        population_25_44,
        population_45_64,
        population_65_plus
    from municipalities
)

select * from final
