-- incremental by institution: dbt_project.yml, macros/incremental.sql
-- Per institution, how many of its ticket ids pseudo.tickets holds more than once. The table has
-- no primary key (docs/decisions.md, "Scale"): the privacy step keeps the rule that a ticket
-- delivered again replaces its row, and the test on this model (every count 0) proves it.
-- Incremental by institution, like the models it guards: every write to an institution's rows
-- (the privacy step, an erasure, a key rotation) sets their loaded_at and so moves its version,
-- and a night checks the institutions that were written, not all tickets again (2-3 s at 10M;
-- docs/performance.md, thirty-second round). A full refresh checks every institution.
-- Exact: macros/repeated_keys.sql.
with tickets as (
    select institution_code, ticket_id
    from {{ ref('stg_pseudo__tickets') }}
    where {{ only_changed_institutions() }}
),

repeated_ticket_ids as (
    {{ repeated_keys('tickets', ['institution_code', 'ticket_id']) }}
),

versions as (
    select * from {{ ref('int_institution_versions') }}
    where {{ only_changed_institutions() }}
)

select
    versions.institution_code,
    versions.institution_version,
    count(repeated_ticket_ids.ticket_id) as repeated_ticket_ids
from versions
left join repeated_ticket_ids
    on repeated_ticket_ids.institution_code = versions.institution_code
group by versions.institution_code, versions.institution_version
