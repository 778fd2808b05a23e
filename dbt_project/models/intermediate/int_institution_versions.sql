-- Per institution, the last time any of its ticket rows was written (delivered, corrected,
-- unlinked by an erasure or re-keyed by a rotation): the version the incremental models
-- compare with their own (macros/incremental.sql). Beside it the last write of its events
-- (delivered in files of their own), for the models that also read them (events=true).
with tickets as (
    select
        institution_code,
        max(loaded_at) as institution_version
    from {{ source('pseudo', 'tickets') }}
    group by institution_code
),

events as (
    select
        institution_code,
        max(loaded_at) as events_version
    from {{ source('pseudo', 'events') }}
    group by institution_code
)

select
    tickets.institution_code,
    tickets.institution_version,
    events.events_version
from tickets
left join events
    on events.institution_code = tickets.institution_code
