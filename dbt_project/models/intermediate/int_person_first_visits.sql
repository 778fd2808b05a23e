-- A person's first visit at an institution (over all delivered history): decides who is new.
with visits as (
    select * from {{ ref('int_visits') }}
),

first_visits as (
    select
        institution_code,
        person_key,
        min(event_start) as first_visit_at,
        min(year) as first_year
    from visits
    group by institution_code, person_key
)

select * from first_visits
