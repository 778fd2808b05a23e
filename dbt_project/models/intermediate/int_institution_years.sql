-- One row per institution and year with tickets: primary discipline (registry), location and
-- size class by tickets in the year (all sold tickets, anonymous ones included).
-- Read from the counted tickets themselves: no person key is needed here, and the fact is a
-- view that resolves them.
with tickets as (
    select
        institution_code,
        cast(extract(year from event_start) as integer) as year
    from {{ ref('stg_pseudo__tickets') }}
    where status = 'sold'
),

registry as (
    select * from {{ ref('stg_reference__institutions') }}
),

areas as (
    select * from {{ ref('stg_reference__pc4') }}
),

institution_years as (
    select
        institution_code,
        year,
        count(*) as tickets
    from tickets
    group by institution_code, year
),

final as (
    select
        institution_years.institution_code,
        institution_years.year,
        institution_years.tickets,
        -- a member no longer in the registry falls back to the standard's catch-all discipline
        coalesce(registry.discipline, 'overig') as discipline,
        registry.pc4,
        areas.gemeente_code,
        areas.lat,
        areas.lon,
        {{ size_class('institution_years.tickets') }} as size_class,
        min(institution_years.year) over (partition by institution_years.institution_code)
            as first_year
    from institution_years
    left join registry on institution_years.institution_code = registry.institution_code
    left join areas on registry.pc4 = areas.pc4
)

select * from final
