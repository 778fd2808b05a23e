-- depends_on: {{ ref('int_institution_versions') }}
-- incremental by institution, rebuilt in full when the reference data changes: dbt_project.yml,
-- macros/incremental.sql
-- Where each person of an institution and year lives, for the market models: PC4 (when in the
-- reference), municipality and distance to the institution. Persons without a known PC4 drop out.
with person_years as (
    select * from {{ ref('int_person_institution_years_keyed') }}
    where {{ only_changed_institutions() }}
),

reference_data as (
    select * from {{ ref('int_reference_version') }}
),

areas as (
    select * from {{ ref('dim_area') }}
),

distances as (
    select * from {{ ref('int_institution_area_distances') }}
    where area_level = 'pc4'
),

final as (
    select
        person_years.institution_code,
        person_years.year,
        person_years.person_key,
        person_years.record_key,
        person_years.age_band,
        areas.pc4,
        areas.gemeente_code,
        distances.distance_km,
        distances.distance_band,
        person_years.institution_version,
        reference_data.reference_version
    from person_years
    cross join reference_data
    inner join areas on person_years.pc4 = areas.pc4
    left join distances
        on person_years.institution_code = distances.institution_code
        and person_years.pc4 = distances.area_code
)

select * from final
