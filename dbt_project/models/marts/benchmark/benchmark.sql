-- Benchmark (metrics.md, product 1): per institution and year, the institution's own values.
-- Person counts and every share or mean over persons pass the k rule inside this model.
with tickets as (
    select * from {{ ref('fct_tickets') }}
),

events as (
    select * from {{ ref('dim_event') }}
),

institutions as (
    select * from {{ ref('dim_institution') }}
),

areas as (
    select * from {{ ref('dim_area') }}
),

person_years as (
    select * from {{ ref('int_person_institution_years') }}
),

ticket_metrics as (
    select
        institution_code,
        event_year as year,
        count(*) as tickets,
        sum(price) as revenue,
        sum(case when price > 0 then 1 else 0 end) as paid_tickets,
        sum(case when channel = 'online' then 1 else 0 end) as online_tickets,
        sum(case when channel is not null then 1 else 0 end) as channel_tickets,
        sum(case when ticket_type in ('discount', 'cjp', 'museumkaart', 'free') then 1 else 0 end)
            as discounted_tickets,
        sum(case when person_key is not null then 1 else 0 end) as identified_tickets,
        percentile_cont(0.5) within group (order by lead_time_days) as lead_time_days_median
    from tickets
    group by institution_code, event_year
),

tickets_per_event as (
    select institution_code, event_id, count(*) as tickets
    from tickets
    group by institution_code, event_id
),

occupancy as (
    select
        events.institution_code,
        events.event_year as year,
        sum(coalesce(tickets_per_event.tickets, 0)) as tickets_with_capacity,
        sum(events.capacity) as capacity
    from events
    left join tickets_per_event
        on events.institution_code = tickets_per_event.institution_code
        and events.event_id = tickets_per_event.event_id
    where events.capacity is not null
    group by events.institution_code, events.event_year
),

person_metrics as (
    select
        person_years.institution_code,
        person_years.year,
        count(*) as n_persons,
        sum(case when person_years.first_year = person_years.year then 1 else 0 end) as n_new,
        sum(case when person_years.age_at_first_visit between 12 and 29 then 1 else 0 end)
            as n_young,
        sum(case when person_years.age_at_first_visit is not null then 1 else 0 end)
            as n_known_age,
        sum(case when home.gemeente_code = institutions.gemeente_code then 1 else 0 end)
            as n_local,
        sum(case when home.gemeente_code is not null then 1 else 0 end) as n_known_area
    from person_years
    inner join institutions on person_years.institution_code = institutions.institution_code
    left join areas as home on person_years.pc4 = home.pc4
    group by person_years.institution_code, person_years.year
),

retention as (
    select
        previous.institution_code,
        previous.year + 1 as year,
        count(*) as n_previous,
        count(current_year.person_key) as n_returned
    from person_years as previous
    left join person_years as current_year
        on previous.institution_code = current_year.institution_code
        and previous.person_key = current_year.person_key
        and current_year.year = previous.year + 1
    group by previous.institution_code, previous.year + 1
),

joined as (
    select
        ticket_metrics.*,
        occupancy.tickets_with_capacity,
        occupancy.capacity,
        coalesce(person_metrics.n_persons, 0) as n_persons_raw,
        person_metrics.n_new,
        person_metrics.n_young,
        person_metrics.n_known_age,
        person_metrics.n_local,
        person_metrics.n_known_area,
        retention.n_previous,
        retention.n_returned
    from ticket_metrics
    left join occupancy
        on ticket_metrics.institution_code = occupancy.institution_code
        and ticket_metrics.year = occupancy.year
    left join person_metrics
        on ticket_metrics.institution_code = person_metrics.institution_code
        and ticket_metrics.year = person_metrics.year
    left join retention
        on ticket_metrics.institution_code = retention.institution_code
        and ticket_metrics.year = retention.year
),

published as (
    select
        institution_code,
        year,
        tickets,
        cast(revenue as decimal(14, 2)) as revenue,
        {{ safe_ratio('revenue', 'paid_tickets') }} as avg_price,
        {{ safe_ratio('tickets_with_capacity', 'capacity') }} as occupancy,
        {{ safe_ratio('online_tickets', 'channel_tickets') }} as share_online,
        {{ safe_ratio('discounted_tickets', 'tickets') }} as share_discounted,
        cast(lead_time_days_median as double) as lead_time_days_median,
        {{ safe_ratio('identified_tickets', 'tickets') }} as share_identified,
        {{ k_count('n_persons_raw') }} as n_persons,
        {{ k_mean('identified_tickets', 'n_persons_raw') }} as tickets_per_person,
        {{ k_share('n_new', 'n_persons_raw') }} as share_new,
        {{ k_share('n_returned', 'n_previous') }} as retention,
        {{ k_share('n_young', 'n_known_age') }} as share_young,
        {{ k_share('n_local', 'n_known_area') }} as share_local,
        n_persons_raw,
        n_new,
        n_previous,
        n_young,
        n_known_age,
        n_local,
        n_known_area
    from joined
),

final as (
    select
        institution_code,
        year,
        tickets,
        revenue,
        avg_price,
        occupancy,
        share_online,
        share_discounted,
        lead_time_days_median,
        share_identified,
        n_persons,
        tickets_per_person,
        share_new,
        retention,
        share_young,
        share_local,
        coalesce(
            (n_persons_raw > 0 and n_persons is null)
            or (n_persons_raw > 0 and tickets_per_person is null)
            or (n_persons_raw > 0 and share_new is null)
            or (n_previous > 0 and retention is null)
            or (n_known_age > 0 and share_young is null)
            or (n_known_area > 0 and share_local is null),
            false
        ) as suppressed
    from published
)

select * from final
