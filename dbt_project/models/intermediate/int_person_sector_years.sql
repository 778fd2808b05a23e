-- One row per person with a sector-wide key and year: their visits across the whole sector and
-- the number of disciplines (the registry's primary discipline of the institutions visited).
-- Counted from the person-years (one row per person, institution and year, with its visits)
-- rather than from every visit.
with person_years as (
    select * from {{ ref('int_person_institution_years') }}
    where has_sector_key
),

institutions as (
    select * from {{ ref('int_institution_years') }}
),

sector_years as (
    select
        person_years.person_key,
        person_years.year,
        cast(sum(person_years.visits) as bigint) as sector_visits,
        count(distinct person_years.institution_code) as n_institutions,
        count(distinct institutions.discipline) as n_disciplines
    from person_years
    inner join institutions
        on person_years.institution_code = institutions.institution_code
        and person_years.year = institutions.year
    group by person_years.person_key, person_years.year
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
