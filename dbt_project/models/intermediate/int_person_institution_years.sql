-- One row per person, institution and year: the grain of every person metric.
with tickets as (
    select
        *,
        cast(extract(year from event_start) as integer) as event_year
    from {{ ref('int_tickets_resolved') }}
    where person_key is not null
),

person_years as (
    select
        institution_code,
        event_year as year,
        person_key,
        count(*) as tickets,
        count(distinct event_id) as visits,
        sum(price) as spend,
        min(event_start) as first_visit_at,
        max(birth_year) as birth_year,
        max(pc4) as pc4
    from tickets
    group by institution_code, event_year, person_key
),

first_years as (
    select
        institution_code,
        person_key,
        min(event_year) as first_year
    from tickets
    group by institution_code, person_key
),

final as (
    select
        person_years.*,
        first_years.first_year,
        extract(year from person_years.first_visit_at) - person_years.birth_year
            as age_at_first_visit
    from person_years
    inner join first_years
        on person_years.institution_code = first_years.institution_code
        and person_years.person_key = first_years.person_key
)

select * from final
