{{ config(materialized='view') }}
-- Counted tickets (status sold) with their person key: the sector-wide pseudonym, else the one
-- linked through the customer number, else the institution-scoped customer pseudonym.
-- A view: its readers (the fact, visits, institution-years) each scan it once,
-- and the incremental ones only for the institutions that changed (macros/incremental.sql);
-- as a table it was a second full copy of the fact, written at every build.
with tickets as (
    select * from {{ ref('stg_pseudo__tickets') }}
),

links as (
    select institution_code, customer_pseudonym, linked_sector_pseudonym
    from {{ ref('int_customer_links') }}
),

versions as (
    select * from {{ ref('int_institution_versions') }}
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
            as has_sector_key,
        versions.institution_version
    from tickets
    inner join versions
        on versions.institution_code = tickets.institution_code
    left join links
        on tickets.institution_code = links.institution_code
        and tickets.customer_pseudonym = links.customer_pseudonym
    where tickets.status = 'sold'
)

select * from resolved
