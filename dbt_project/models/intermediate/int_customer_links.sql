-- Within one institution, rows that share a customer_id are one person, also where only some
-- of those rows carry an e-mail or phone (delivery-standard.md): link each institution-scoped
-- customer pseudonym to the sector pseudonym seen with it. Where one account was seen with
-- two (a shared or family account), the one on the account's earliest sale wins: a choice that
-- does not depend on the pseudonyms themselves, so a key rotation cannot change it.
with tickets as (
    select * from {{ ref('stg_pseudo__tickets') }}
),

links as (
    select
        institution_code,
        customer_pseudonym,
        min_by(sector_pseudonym, {{ dbt.concat(["cast(sold_at as varchar)", "'|'", "ticket_id"]) }})
            as linked_sector_pseudonym
    from tickets
    where customer_pseudonym is not null
      and sector_pseudonym is not null
    group by institution_code, customer_pseudonym
)

select * from links
