-- Age profile per institution, year and age band, with disclosure control decided once (the
-- benchmark's share_young is a sum of two of these cells). Persons by age band at their first
-- visit of the year, against the population of the institution's catchment (PC4 areas within
-- catchment_radius_km, else the whole country) in the same bands. CBS counts inhabitants in the
-- bands 0-14, 15-24, 25-44, 45-64, 65+; a CBS band is spread over the metrics' bands evenly per
-- year of age (docs/metrics.md): 0-11 = 12/15 of 0-14; 12-17 = 3/15 of 0-14 + 3/10 of 15-24;
-- 18-29 = 7/10 of 15-24 + 5/20 of 25-44; 30-44 = 15/20 of 25-44; 45-64 and 65+ as they are.
with institution_years as (
    select * from {{ ref('int_institution_years') }}
),

person_years as (
    select * from {{ ref('int_person_institution_years_keyed') }}
    where age_band is not null
),

catchment as (
    select * from {{ ref('int_market_catchment') }}
),

distances as (
    select * from {{ ref('int_institution_area_distances') }}
    where area_level = 'pc4'
),

areas as (
    select * from {{ ref('dim_area') }}
),

bands as (
    {{ label_table('age_band', ['0-11', '12-17', '18-29', '30-44', '45-64', '65+']) }}
),

counts as (
    select
        institution_code,
        year,
        age_band,
        count(*) as n_persons,
        sum(record_key) as key_persons
    from person_years
    group by institution_code, year, age_band
),

catchment_population as (
    select
        catchment.institution_code,
        catchment.year,
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
    group by catchment.institution_code, catchment.year
),

band_population as (
    select
        catchment_population.institution_code,
        catchment_population.year,
        bands.age_band,
        case bands.age_band
            when '0-11' then population_0_14 * 12.0 / 15
            when '12-17' then population_0_14 * 3.0 / 15 + population_15_24 * 3.0 / 10
            when '18-29' then population_15_24 * 7.0 / 10 + population_25_44 * 5.0 / 20
            when '30-44' then population_25_44 * 15.0 / 20
            when '45-64' then population_45_64 * 1.0
            when '65+' then population_65_plus * 1.0
        end as population,
        population_0_14 + population_15_24 + population_25_44 + population_45_64
            + population_65_plus as population_total
    from catchment_population
    cross join bands
),

cells as (
    select
        institution_years.institution_code,
        institution_years.year,
        bands.age_band,
        bands.sort_order as band_order,
        coalesce(counts.n_persons, 0) as n_persons,
        sum(coalesce(counts.n_persons, 0)) over (
            partition by institution_years.institution_code, institution_years.year
        ) as n_known_age,
        coalesce(counts.key_persons, 0) as key_persons,
        sum(coalesce(counts.key_persons, 0)) over (
            partition by institution_years.institution_code, institution_years.year
        ) as key_known_age,
        catchment.catchment_radius_km,
        cast(band_population.population as double) as catchment_population,
        {{ safe_ratio('band_population.population', 'band_population.population_total') }}
            as population_share
    from institution_years
    cross join bands
    left join counts
        on institution_years.institution_code = counts.institution_code
        and institution_years.year = counts.year
        and bands.age_band = counts.age_band
    left join catchment
        on institution_years.institution_code = catchment.institution_code
        and institution_years.year = catchment.year
    left join band_population
        on institution_years.institution_code = band_population.institution_code
        and institution_years.year = band_population.year
        and bands.age_band = band_population.age_band
),

-- the benchmark's share_young adds the bands 12-17 and 18-29: the second withheld band is
-- sought on the same side of that split as the first, so that share_young stays publishable
primary_suppression as (
    select
        cells.*,
        case when age_band in ('12-17', '18-29') then 'young' else 'other' end as young_split,
        {{ k_fails('n_persons') }} as is_withheld
    from cells
),

final as (
    {{ secondary_suppression(
        'primary_suppression',
        ['institution_code', 'year', 'age_band', 'band_order', 'n_persons', 'n_known_age',
         'key_persons', 'key_known_age', 'catchment_radius_km', 'catchment_population',
         'population_share'],
        set_columns=['institution_code', 'year'],
        n_column='n_persons', flag_column='is_withheld', tiebreak=['band_order'],
        prefer_set=['institution_code', 'year', 'young_split']
    ) }}
)

select * from final
