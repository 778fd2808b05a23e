{{ config(meta={'dagster': {'ref': {'name': 'int_person_institution_years'}}}) }}
-- Every person counted has a record key (pseudo.person_record_keys, written by the privacy step
-- with every person key a delivery brings in; null only for a person of an older version's
-- warehouse until the next privacy step computes it).
-- A person without one would add 0 to every cell key: their cells would get the deviation of
-- the cells without them, and adding or removing them would no longer change the cell key
-- (the differencing attack, tests/test_privacy_attacks.py). A failing test blocks publication.
-- The key the cells count is the one stored on the person-year (int_person_institution_years,
-- incremental): it must be there and equal the person's key now.
with person_years as (
    select * from {{ ref('int_person_institution_years') }}
),

record_keys as (
    select * from {{ ref('stg_pseudo__person_record_keys') }}
)

select distinct person_years.institution_code, person_years.year
from person_years
left join record_keys on person_years.person_key = record_keys.person_key
where record_keys.person_key is null
   or record_keys.record_key is null
   or person_years.record_key is distinct from record_keys.record_key
