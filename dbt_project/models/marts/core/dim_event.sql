with events as (
    select * from {{ ref('stg_pseudo__events') }}
),

final as (
    select
        institution_code,
        event_id,
        starts_at,
        cast(extract(year from starts_at) as integer) as event_year,
        discipline,
        event_name,
        venue,
        capacity
    from events
)

select * from final
