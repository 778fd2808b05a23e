with source as (
    select * from {{ source('pseudo', 'events') }}
),

renamed as (
    select
        institution_code,
        event_id,
        cast(starts_at as timestamp) as starts_at,
        discipline,
        event_name,
        venue,
        capacity
    from source
)

select * from renamed
