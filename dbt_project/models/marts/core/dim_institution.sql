with institutions as (
    select * from {{ ref('stg_reference__institutions') }}
),

areas as (
    select * from {{ ref('dim_area') }}
),

final as (
    select
        institutions.institution_code,
        institutions.institution_name,
        institutions.discipline,
        institutions.pc4,
        areas.gemeente_code,
        areas.gemeente_naam,
        areas.provincie,
        areas.lat,
        areas.lon
    from institutions
    left join areas on institutions.pc4 = areas.pc4
)

select * from final
