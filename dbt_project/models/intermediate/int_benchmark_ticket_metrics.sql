-- The benchmark's ticket metrics per institution and year (no persons behind them, so no k
-- rule): tickets, revenue, prices, occupancy, channel and discount shares, lead time.
-- Read from the counted tickets themselves, not from the fact (a view that resolves person
-- keys through the customer links): a ticket is identified when it has a sector or a customer
-- pseudonym, which is exactly when the fact gives it a person key.
-- Incremental by institution (dbt_project.yml, macros/incremental.sql): its rows depend on the
-- institution's own tickets and events only, so a night recomputes the institutions whose
-- tickets or events were written, not every ticket of the sector (docs/performance.md,
-- thirty-second round).
with tickets as (
    select
        institution_code,
        event_id,
        cast(extract(year from event_start) as integer) as year,
        price,
        ticket_type,
        channel,
        coalesce(sector_pseudonym, customer_pseudonym) is not null as identified,
        {{ lead_time_days('sold_at', 'event_start') }} as lead_time_days
    from {{ ref('stg_pseudo__tickets') }}
    where status = 'sold'
      and {{ only_changed_institutions() }}
),

events as (
    select
        institution_code,
        event_id,
        cast(extract(year from starts_at) as integer) as year,
        capacity
    from {{ ref('stg_pseudo__events') }}
    where {{ only_changed_institutions() }}
),

-- what the rows were computed from: the institution's version (its tickets) and the last write
-- of its events
versions as (
    select * from {{ ref('int_institution_versions') }}
),

ticket_metrics as (
    select
        institution_code,
        year,
        count(*) as tickets,
        sum(price) as revenue,
        sum(case when price > 0 then 1 else 0 end) as paid_tickets,
        sum(case when channel = 'online' then 1 else 0 end) as online_tickets,
        sum(case when channel is not null then 1 else 0 end) as channel_tickets,
        sum(case when ticket_type in ('discount', 'cjp', 'museumkaart', 'free') then 1 else 0 end)
            as discounted_tickets,
        sum(case when identified then 1 else 0 end) as identified_tickets,
        percentile_cont(0.5) within group (order by lead_time_days) as lead_time_days_median
    from tickets
    group by institution_code, year
),

tickets_per_event as (
    select
        institution_code,
        event_id,
        count(*) as tickets
    from tickets
    group by institution_code, event_id
),

occupancy as (
    select
        events.institution_code,
        events.year,
        sum(coalesce(tickets_per_event.tickets, 0)) as tickets_with_capacity,
        sum(events.capacity) as capacity
    from events
    left join tickets_per_event
        on events.institution_code = tickets_per_event.institution_code
        and events.event_id = tickets_per_event.event_id
    where events.capacity is not null
    group by events.institution_code, events.year
),

final as (
    select
        ticket_metrics.institution_code,
        ticket_metrics.year,
        ticket_metrics.tickets,
        cast(ticket_metrics.revenue as decimal(14, 2)) as revenue,
        {{ safe_ratio('ticket_metrics.revenue', 'ticket_metrics.paid_tickets') }} as avg_price,
        {{ safe_ratio('occupancy.tickets_with_capacity', 'occupancy.capacity') }} as occupancy,
        {{ safe_ratio('ticket_metrics.online_tickets', 'ticket_metrics.channel_tickets') }}
            as share_online,
        {{ safe_ratio('ticket_metrics.discounted_tickets', 'ticket_metrics.tickets') }}
            as share_discounted,
        cast(ticket_metrics.lead_time_days_median as double) as lead_time_days_median,
        ticket_metrics.identified_tickets,
        {{ safe_ratio('ticket_metrics.identified_tickets', 'ticket_metrics.tickets') }}
            as share_identified,
        versions.institution_version,
        versions.events_version
    from ticket_metrics
    inner join versions
        on ticket_metrics.institution_code = versions.institution_code
    left join occupancy
        on ticket_metrics.institution_code = occupancy.institution_code
        and ticket_metrics.year = occupancy.year
)

select * from final
