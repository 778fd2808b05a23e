-- depends_on: {{ ref('int_institution_versions') }}
-- incremental by institution: dbt_project.yml, macros/incremental.sql
-- One row per person, institution and year: the grain of every person metric. With the
-- person's record key (null while the privacy step has not keyed the person yet; the pre-hook
-- then recomputes the institution at the next build), stored here so that the models counting
-- perturbed cells do not join the record keys again, each of them, every night.
-- Visits and first visits are steps of this model, not tables of their own: each was a
-- person-level copy of the tickets, written and read back at every build (docs/performance.md,
-- twelfth round).
with tickets as (
    select
        institution_code,
        person_key,
        has_sector_key,
        event_id,
        cast(extract(year from event_start) as integer) as year,
        event_start,
        price,
        birth_year,
        pc4,
        institution_version
    from {{ ref('int_tickets_resolved') }}
    where person_key is not null
      and {{ only_changed_institutions() }}
),

-- a visit (bezoek): a person at an event. Visits count distinct events, so two tickets for
-- one performance are one visit. Anonymous tickets are not visits.
visits as (
    select
        institution_code,
        person_key,
        has_sector_key,
        event_id,
        year,
        min(event_start) as event_start,
        count(*) as tickets,
        sum(price) as spend,
        max(birth_year) as birth_year,
        max(pc4) as pc4,
        max(institution_version) as institution_version
    from tickets
    group by institution_code, person_key, has_sector_key, event_id, year
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

-- the person's first year at the institution over all delivered history: decides who is new.
-- An aggregate joined back, not a window over person_years (the window alone took 2.2 s of
-- the model's ~6 s at 10M tickets; the model is no slower this way, at best 0.7 CPU s
-- faster: docs/performance.md, sixteenth round)
first_years as (
    select
        institution_code,
        person_key,
        min(year) as first_year
    from person_years
    group by institution_code, person_key
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
        first_years.first_year,
        first_years.first_year = person_years.year as is_new,
        -- age at the first visit of the year, from the birth year only (docs/decisions.md)
        person_years.year - person_years.birth_year as age_at_first_visit,
        {{ age_band('person_years.year - person_years.birth_year') }} as age_band,
        person_years.institution_version,
        -- last, as an upgrade from the model without it adds it (macros/incremental.sql)
        record_keys.record_key
    from person_years
    inner join first_years
        on person_years.institution_code = first_years.institution_code
        and person_years.person_key = first_years.person_key
    left join record_keys on person_years.person_key = record_keys.person_key
)

select * from final
