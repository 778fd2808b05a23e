-- One row per person with a sector-wide key and year: their visits across the whole sector and
-- the number of disciplines (the registry's primary discipline of the institutions visited).
with visits as (
    select * from {{ ref('int_visits') }}
    where has_sector_key
),

institutions as (
    select * from {{ ref('int_institution_years') }}
),

sector_years as (
    select
        visits.person_key,
        visits.year,
        count(*) as sector_visits,
        count(distinct visits.institution_code) as n_institutions,
        count(distinct institutions.discipline) as n_disciplines
    from visits
    inner join institutions
        on visits.institution_code = institutions.institution_code
        and visits.year = institutions.year
    group by visits.person_key, visits.year
),

final as (
    select
        person_key,
        year,
        sector_visits,
        n_institutions,
        n_disciplines,
        {{ intensity('sector_visits') }} as intensity,
        {{ breadth('n_disciplines') }} as breadth
    from sector_years
)

select * from final
