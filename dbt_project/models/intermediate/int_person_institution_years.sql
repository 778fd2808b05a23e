-- depends_on: {{ ref('int_institution_versions') }}
-- incremental by institution: dbt_project.yml, macros/incremental.sql
-- One row per person, institution and year: the grain of every person metric. With the
-- person's record key (null while the privacy step has not keyed the person yet; the pre-hook
-- then recomputes the institution at the next build), stored here so that the models counting
-- perturbed cells do not join the record keys again, each of them, every night.
with visits as (
    select * from {{ ref('int_visits') }}
    where {{ only_changed_institutions() }}
),

first_visits as (
    select * from {{ ref('int_person_first_visits') }}
    where {{ only_changed_institutions() }}
),

record_keys as (
    select * from {{ ref('stg_pseudo__person_record_keys') }}
),

person_years as (
    select
        institution_code,
        year,
        person_key,
        has_sector_key,
        sum(tickets) as tickets,
        count(*) as visits,
        sum(spend) as spend,
        min(event_start) as first_visit_at,
        max(event_start) as last_visit_at,
        max(birth_year) as birth_year,
        max(pc4) as pc4,
        max(institution_version) as institution_version
    from visits
    group by institution_code, year, person_key, has_sector_key
),

final as (
    select
        person_years.institution_code,
        person_years.year,
        person_years.person_key,
        person_years.has_sector_key,
        person_years.tickets,
        person_years.visits,
        person_years.spend,
        person_years.first_visit_at,
        person_years.last_visit_at,
        person_years.birth_year,
        person_years.pc4,
        first_visits.first_year,
        first_visits.first_year = person_years.year as is_new,
        -- age at the first visit of the year, from the birth year only (docs/decisions.md)
        person_years.year - person_years.birth_year as age_at_first_visit,
        {{ age_band('person_years.year - person_years.birth_year') }} as age_band,
        person_years.institution_version,
        -- last, as an upgrade from the model without it adds it (macros/incremental.sql)
        record_keys.record_key
    from person_years
    inner join first_visits
        on person_years.institution_code = first_visits.institution_code
        and person_years.person_key = first_visits.person_key
    left join record_keys on person_years.person_key = record_keys.person_key
)

select * from final
