-- Catchment (verzorgingsgebied) per institution and year, raw: persons with a known distance,
-- persons per distance band, and the radius that holds 60%, 80% and 90% of them (the smallest
-- distance within which that share of persons lives).
-- key_*: sums of the persons' record keys, the cell keys of the perturbation of open years.
with person_areas as (
    select * from {{ ref('int_person_areas') }}
    where distance_km is not null
),

institution_years as (
    select * from {{ ref('int_institution_years') }}
),

catchment as (
    select
        institution_code,
        year,
        count(*) as n_persons,
        sum(case when distance_band = '0-10' then 1 else 0 end) as n_0_10,
        sum(case when distance_band = '10-25' then 1 else 0 end) as n_10_25,
        sum(case when distance_band = '25-50' then 1 else 0 end) as n_25_50,
        sum(case when distance_band = '50+' then 1 else 0 end) as n_50_plus,
        sum(record_key) as key_persons,
        sum(case when distance_band = '0-10' then record_key else 0 end) as key_0_10,
        sum(case when distance_band = '10-25' then record_key else 0 end) as key_10_25,
        sum(case when distance_band = '25-50' then record_key else 0 end) as key_25_50,
        percentile_disc(0.6) within group (order by distance_km) as radius_60_km,
        percentile_disc(0.8) within group (order by distance_km) as radius_80_km,
        percentile_disc(0.9) within group (order by distance_km) as radius_90_km
    from person_areas
    group by institution_code, year
),

final as (
    select
        institution_years.institution_code,
        institution_years.year,
        coalesce(catchment.n_persons, 0) as n_persons,
        coalesce(catchment.n_0_10, 0) as n_0_10,
        coalesce(catchment.n_10_25, 0) as n_10_25,
        coalesce(catchment.n_25_50, 0) as n_25_50,
        coalesce(catchment.n_50_plus, 0) as n_50_plus,
        coalesce(catchment.key_persons, 0) as key_persons,
        coalesce(catchment.key_0_10, 0) as key_within_10,
        coalesce(catchment.key_0_10, 0) + coalesce(catchment.key_10_25, 0) as key_within_25,
        coalesce(catchment.key_0_10, 0) + coalesce(catchment.key_10_25, 0)
            + coalesce(catchment.key_25_50, 0) as key_within_50,
        catchment.radius_60_km,
        catchment.radius_80_km,
        catchment.radius_90_km
    from institution_years
    left join catchment
        on institution_years.institution_code = catchment.institution_code
        and institution_years.year = catchment.year
)

select * from final
