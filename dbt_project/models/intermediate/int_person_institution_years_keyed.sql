-- int_person_institution_years with each person's record key (0 for a person key without one,
-- e.g. a warehouse written by hand): the rows the perturbed cells are counted from. A view, so
-- that the person-year grain is stored once.
{{ config(materialized='view') }}

with person_years as (
    select * from {{ ref('int_person_institution_years') }}
),

record_keys as (
    select * from {{ ref('stg_pseudo__person_record_keys') }}
),

final as (
    select
        person_years.*,
        coalesce(record_keys.record_key, 0) as record_key
    from person_years
    left join record_keys on person_years.person_key = record_keys.person_key
)

select * from final
