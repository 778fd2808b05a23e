-- The sector's ticket fact: one row per counted ticket (status sold, after corrections).
-- Internal: carries the person key, never published.
-- A view over pseudo.tickets with the person keys resolved (int_tickets_resolved): no model
-- reads it (the ticket metrics count staging's sold tickets, the person models read the
-- resolved view), so a table would only write every ticket a second time into the warehouse.
with tickets as (
    select * from {{ ref('int_tickets_resolved') }}
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
        {{ lead_time_days('sold_at', 'event_start') }} as lead_time_days,
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
