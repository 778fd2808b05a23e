-- Distance from every institution to every area (PC4 and municipality), haversine on the
-- centroids: the institution's PC4 centroid to the PC4 centroid, or to the municipality's
-- population-weighted centroid. NULL where the institution's PC4 is not in the reference.
with institutions as (
    select * from {{ ref('dim_institution') }}
),

areas as (
    select * from {{ ref('dim_area') }}
),

municipalities as (
    select * from {{ ref('dim_municipality') }}
),

pc4_distances as (
    select
        institutions.institution_code,
        'pc4' as area_level,
        areas.pc4 as area_code,
        {{ haversine_km('institutions.lat', 'institutions.lon', 'areas.lat', 'areas.lon') }}
            as distance_km
    from institutions
    cross join areas
),

municipality_distances as (
    select
        institutions.institution_code,
        'gemeente' as area_level,
        municipalities.gemeente_code as area_code,
        {{ haversine_km('institutions.lat', 'institutions.lon',
                        'municipalities.lat', 'municipalities.lon') }} as distance_km
    from institutions
    cross join municipalities
),

distances as (
    select * from pc4_distances
    union all
    select * from municipality_distances
),

final as (
    select
        institution_code,
        area_level,
        area_code,
        distance_km,
        {{ distance_band('distance_km') }} as distance_band
    from distances
)

select * from final
