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

-- the earliest sale first, then the lowest ticket id among sales of that time: two plain
-- min_by steps. A text key "sold_at|ticket_id" put 10:00:00.5 before 10:00:00 ('.' sorts
-- before '|'); a struct key is DuckDB-only (tests/test_dbt_portability.py).
sales as (
    select
        tickets.institution_code,
        tickets.customer_pseudonym,
        tickets.sold_at,
        min_by(tickets.sector_pseudonym, tickets.ticket_id) as sector_pseudonym
    from tickets
    where tickets.customer_pseudonym is not null
      and tickets.sector_pseudonym is not null
    group by tickets.institution_code, tickets.customer_pseudonym, tickets.sold_at
),

links as (
    select
        sales.institution_code,
        sales.customer_pseudonym,
        min_by(sales.sector_pseudonym, sales.sold_at) as linked_sector_pseudonym
    from sales
    group by sales.institution_code, sales.customer_pseudonym
)

select
    links.institution_code,
    links.customer_pseudonym,
    links.linked_sector_pseudonym,
    versions.institution_version
from links
inner join versions
    on versions.institution_code = links.institution_code
