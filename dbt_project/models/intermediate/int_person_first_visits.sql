{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        pre_hook="{{ delete_changed_institutions() }}",
    )
}}
-- depends_on: {{ ref('int_institution_versions') }}
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
