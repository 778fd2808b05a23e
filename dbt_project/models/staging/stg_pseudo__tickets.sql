with source as (
    select * from {{ source('pseudo', 'tickets') }}
),

renamed as (
    select
        institution_code,
        ticket_id,
        order_id,
        event_id,
        cast(event_start as timestamp) as event_start,
        cast(sold_at as timestamp) as sold_at,
        cast(price as decimal(12, 2)) as price,
        ticket_type,
        channel,
        status,
        -- persons by the 128-bit heads of their pseudonyms (all pseudo.tickets holds of them;
        -- each full pseudonym is kept once, in pseudo.person_record_keys): every model groups
        -- and joins on 16-byte numbers, not on 64-character text (docs/performance.md,
        -- seventeenth and twenty-fourth rounds)
        sector_head as sector_pseudonym,
        customer_head as customer_pseudonym,
        pc4,
        country,
        birth_year,
        gender,
        research_opt_out
    from source
)

select * from renamed
