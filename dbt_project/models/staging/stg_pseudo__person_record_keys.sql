-- Record keys for the cell-key perturbation of open years (macros/perturbation.sql): one per
-- person key, in [0, 1). Aggregated only (sum -> fractional part -> p-table), never published.
with source as (
    select * from {{ source('perturbation', 'person_record_keys') }}
),

renamed as (
    select
        -- the head of the person key, as the persons of stg_pseudo__tickets
        person_head as person_key,
        cast(record_key as double) as record_key
    from source
)

select * from renamed
