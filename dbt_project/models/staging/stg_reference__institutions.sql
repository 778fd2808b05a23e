with source as (
    select * from {{ source('reference', 'institutions') }}
),

renamed as (
    select
        trim(code) as institution_code,
        trim(name) as institution_name,
        trim(discipline) as discipline,
        lpad(trim(pc4), 4, '0') as pc4
    from source
)

select * from renamed
