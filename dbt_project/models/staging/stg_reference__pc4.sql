with source as (
    select * from {{ source('reference', 'pc4') }}
),

renamed as (
    select
        pc4,
        gemeente_code,
        gemeente_naam,
        provincie,
        lat,
        lon,
        aantal_inwoners
    from source
)

select * from renamed
