-- Counted tickets (status sold) with their person key: the sector-wide pseudonym, else the one
-- linked through the customer number, else the institution-scoped customer pseudonym.
with tickets as (
    select * from {{ ref('stg_pseudo__tickets') }}
),

links as (
    select * from {{ ref('int_customer_links') }}
),

resolved as (
    select
        tickets.*,
        coalesce(
            tickets.sector_pseudonym,
            links.linked_sector_pseudonym,
            tickets.customer_pseudonym
        ) as person_key,
        coalesce(tickets.sector_pseudonym, links.linked_sector_pseudonym) is not null
            as has_sector_key
    from tickets
    left join links
        on tickets.institution_code = links.institution_code
        and tickets.customer_pseudonym = links.customer_pseudonym
    where tickets.status = 'sold'
)

select * from resolved
