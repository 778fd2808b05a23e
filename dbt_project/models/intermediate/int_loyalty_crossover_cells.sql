-- Crossover (overlap) per institution, year and discipline: of the institution's persons with a
-- sector-wide key in the year, how many also visited another institution of that discipline
-- (the registry's primary discipline) in the same year. Raw counts with the sums of the persons'
-- record keys (the perturbation's cell keys); no other institution named.
-- Incremental by year (dbt_project.yml, macros/incremental.sql).
with all_institution_years as (
    select * from {{ ref('int_institution_years') }}
),

institution_years as (
    select * from all_institution_years
    where {{ only_changed_years() }}
),

person_years as (
    select * from {{ ref('int_person_institution_years_keyed') }}
    where has_sector_key
      and {{ only_changed_years() }}
),

fingerprints as (
    select * from {{ ref('int_year_fingerprints') }}
),

base as (
    select
        institution_code,
        year,
        count(*) as n_base,
        sum(record_key) as key_base
    from person_years
    group by institution_code, year
),

other_visits as (
    select distinct
        own.institution_code,
        own.year,
        own.person_key,
        own.record_key,
        other_institution.discipline
    from person_years as own
    inner join person_years as other_visit
        on own.person_key = other_visit.person_key
        and own.year = other_visit.year
        and own.institution_code <> other_visit.institution_code
    inner join institution_years as other_institution
        on other_visit.institution_code = other_institution.institution_code
        and other_visit.year = other_institution.year
),

counts as (
    select
        institution_code,
        year,
        discipline,
        count(*) as n_persons,
        sum(record_key) as key_persons
    from other_visits
    group by institution_code, year, discipline
),

-- every discipline of the sector, of any year (in the years' fingerprints)
disciplines as (
    select distinct discipline from all_institution_years
),

final as (
    select
        institution_years.institution_code,
        institution_years.year,
        disciplines.discipline,
        disciplines.discipline = institution_years.discipline as is_own_discipline,
        coalesce(counts.n_persons, 0) as n_persons,
        coalesce(base.n_base, 0) as n_base,
        coalesce(counts.key_persons, 0) as key_persons,
        coalesce(base.key_base, 0) as key_base,
        fingerprints.year_fingerprint
    from institution_years
    inner join fingerprints on institution_years.year = fingerprints.year
    cross join disciplines
    left join base
        on institution_years.institution_code = base.institution_code
        and institution_years.year = base.year
    left join counts
        on institution_years.institution_code = counts.institution_code
        and institution_years.year = counts.year
        and disciplines.discipline = counts.discipline
)

select * from final
