with pc4 as (
    select * from {{ ref('stg_reference__pc4') }}
)

select * from pc4
