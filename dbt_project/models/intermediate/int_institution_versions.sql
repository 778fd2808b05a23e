-- Per institution, the last time any of its ticket rows was written (delivered, corrected,
-- unlinked by an erasure or re-keyed by a rotation): the version the incremental models
-- compare with their own (macros/incremental.sql).
select
    institution_code,
    max(loaded_at) as institution_version
from {{ source('pseudo', 'tickets') }}
group by institution_code
