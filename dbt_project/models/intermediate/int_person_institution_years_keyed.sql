-- int_person_institution_years with each person's record key as the perturbed cells count it:
-- 0 for a person key without one (e.g. a warehouse written by hand; the test
-- assert_every_person_has_a_record_key fails on it and blocks publication). A view, so that
-- the person-year grain is stored once.
{{ config(materialized='view') }}

with person_years as (
    select * from {{ ref('int_person_institution_years') }}
),

final as (
    select
        institution_code,
        year,
        person_key,
        has_sector_key,
        tickets,
        visits,
        spend,
        first_visit_at,
        last_visit_at,
        birth_year,
        pc4,
        first_year,
        is_new,
        age_at_first_visit,
        age_band,
        institution_version,
        coalesce(record_key, 0) as record_key
    from person_years
)

select * from final
