-- depends_on: {{ ref('int_institution_versions') }}
-- incremental by institution: dbt_project.yml, macros/incremental.sql
-- The sector's ticket fact: one row per counted ticket (status sold, after corrections).
-- Internal: carries the person key, never published.
with tickets as (
    select * from {{ ref('int_tickets_resolved') }}
    where {{ only_changed_institutions() }}
),

final as (
    select
        institution_code,
        ticket_id,
        order_id,
        event_id,
        event_start,
        cast(extract(year from event_start) as integer) as event_year,
        sold_at,
        {{ dbt.datediff("cast(sold_at as date)", "cast(event_start as date)", "day") }}
            as lead_time_days,
        price,
        ticket_type,
        channel,
        person_key,
        has_sector_key,
        pc4,
        country,
        birth_year,
        cast(extract(year from event_start) as integer) - birth_year as age_at_event,
        {{ age_band("cast(extract(year from event_start) as integer) - birth_year") }}
            as age_band,
        gender,
        institution_version
    from tickets
)

select * from final
