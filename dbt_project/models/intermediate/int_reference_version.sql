-- One row: the fingerprint of the reference data as the models read it (the member registry and
-- the PC4 statistics). Incremental models that also read the reference data carry it on their
-- rows and are rebuilt in full when it changes (macros/incremental.sql). The registry and the
-- PC4 file are re-read at every run, so a timestamp would move every night; their content
-- does not.
with pc4 as (
    select md5(string_agg(cast(areas as varchar), chr(10) order by cast(areas as varchar)))
        as fingerprint
    from {{ ref('stg_reference__pc4') }} as areas
),

registry as (
    select md5(
        string_agg(cast(institutions as varchar), chr(10) order by cast(institutions as varchar))
    ) as fingerprint
    from {{ ref('stg_reference__institutions') }} as institutions
)

select md5(coalesce(pc4.fingerprint, '') || '|' || coalesce(registry.fingerprint, ''))
    as reference_version
from pc4
cross join registry
