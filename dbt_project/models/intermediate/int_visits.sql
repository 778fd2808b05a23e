-- depends_on: {{ ref('int_institution_versions') }}
-- incremental by institution: dbt_project.yml, macros/incremental.sql
-- One row per person, institution and event attended: a visit (bezoek). Visits count distinct
-- events, so two tickets for one performance are one visit. Anonymous tickets are not visits.
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
)

select * from visits
