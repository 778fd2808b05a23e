-- One row per person with a sector-wide key and year: their visits across the whole sector and
-- the number of disciplines (the registry's primary discipline of the institutions visited).
-- Counted from the person-years (one row per person, institution and year, with its visits)
-- rather than from every visit. Incremental by year (dbt_project.yml, macros/incremental.sql).
with person_years as (
    select * from {{ ref('int_person_institution_years') }}
    where has_sector_key
      and {{ only_changed_years() }}
),

institutions as (
    select * from {{ ref('int_institution_years') }}
    where {{ only_changed_years() }}
),

fingerprints as (
    select * from {{ ref('int_year_fingerprints') }}
),

sector_years as (
    select
        person_years.person_key,
        person_years.year,
        cast(sum(person_years.visits) as bigint) as sector_visits,
        -- one row per institution here (person_years is one row per institution, year,
        -- person key and has_sector_key, and only has_sector_key rows are read): count(*) is
        -- count(distinct institution_code) without its second aggregation (2.0 -> 1.0 s at 10M)
        count(*) as n_institutions,
        count(distinct institutions.discipline) as n_disciplines
    from person_years
    inner join institutions
        on person_years.institution_code = institutions.institution_code
        and person_years.year = institutions.year
    group by person_years.person_key, person_years.year
),

final as (
    select
        sector_years.person_key,
        sector_years.year,
        sector_years.sector_visits,
        sector_years.n_institutions,
        sector_years.n_disciplines,
        {{ intensity('sector_years.sector_visits') }} as intensity,
        {{ breadth('sector_years.n_disciplines') }} as breadth,
        fingerprints.year_fingerprint
    from sector_years
    inner join fingerprints on sector_years.year = fingerprints.year
)

select * from final
