-- depends_on: {{ ref('int_institution_versions') }}
-- incremental by institution: dbt_project.yml, macros/incremental.sql
-- A person's first visit at an institution (over all delivered history): decides who is new.
with visits as (
    select * from {{ ref('int_visits') }}
    where {{ only_changed_institutions() }}
),

first_visits as (
    select
        institution_code,
        person_key,
        min(event_start) as first_visit_at,
        min(year) as first_year,
        max(institution_version) as institution_version
    from visits
    group by institution_code, person_key
)

select * from first_visits
