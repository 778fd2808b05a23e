-- depends_on: {{ ref('int_institution_versions') }}
-- incremental by institution: dbt_project.yml, macros/incremental.sql
-- Within one institution, rows that share a customer_id are one person, also where only some
-- of those rows carry an e-mail or phone (delivery-standard.md): link each institution-scoped
-- customer pseudonym to the sector pseudonym seen with it. Where one account was seen with
-- two (a shared or family account), the one on the account's earliest sale wins: a choice that
-- does not depend on the pseudonyms themselves, so a key rotation cannot change it.
with tickets as (
    select * from {{ ref('stg_pseudo__tickets') }}
    where {{ only_changed_institutions() }}
),

versions as (
    select * from {{ ref('int_institution_versions') }}
),

links as (
    select
        tickets.institution_code,
        tickets.customer_pseudonym,
        -- the earliest sale, ties by ticket id: ordered as a (time, text) pair. The text
        -- "sold_at|ticket_id" put 10:00:00.5 before 10:00:00 ('.' sorts before '|').
        min_by(sector_pseudonym, struct_pack(sold_at := sold_at, ticket_id := ticket_id))
            as linked_sector_pseudonym
    from tickets
    where customer_pseudonym is not null
      and sector_pseudonym is not null
    group by tickets.institution_code, tickets.customer_pseudonym
)

select
    links.institution_code,
    links.customer_pseudonym,
    links.linked_sector_pseudonym,
    versions.institution_version
from links
inner join versions
    on versions.institution_code = links.institution_code
