-- Sector penetration per municipality, discipline and year, raw: distinct persons living in the
-- municipality who visited an institution of the discipline (registry's primary discipline) in
-- the year, for every municipality and every discipline active in the year (0 where no one).
-- For business confidentiality also the number of institutions of the discipline in the year
-- and, per cell, the sum and the two largest of the institutions' own counts (dominance rule).
-- A person is placed in one municipality per year (the highest PC4 seen that year).
-- Incremental by year (dbt_project.yml, macros/incremental.sql).
with institution_years as (
    select * from {{ ref('int_institution_years') }}
    where {{ only_changed_years() }}
),

person_years as (
    select * from {{ ref('int_person_institution_years_keyed') }}
    where {{ only_changed_years() }}
),

fingerprints as (
    select * from {{ ref('int_year_fingerprints') }}
),

municipalities as (
    select * from {{ ref('dim_municipality') }}
),

areas as (
    select * from {{ ref('dim_area') }}
),

person_homes as (
    select
        person_years.person_key,
        person_years.year,
        max(person_years.pc4) as pc4
    from person_years
    where person_years.pc4 is not null
    group by person_years.person_key, person_years.year
),

person_disciplines as (
    select distinct
        person_years.person_key,
        person_years.record_key,
        person_years.year,
        person_years.institution_code,
        institution_years.discipline,
        areas.gemeente_code
    from person_years
    inner join institution_years
        on person_years.institution_code = institution_years.institution_code
        and person_years.year = institution_years.year
    inner join person_homes
        on person_years.person_key = person_homes.person_key
        and person_years.year = person_homes.year
    inner join areas on person_homes.pc4 = areas.pc4
),

persons as (
    select
        gemeente_code,
        discipline,
        year,
        count(*) as n_persons,
        sum(record_key) as key_persons
    from (
        select distinct gemeente_code, discipline, year, person_key, record_key
        from person_disciplines
    ) as distinct_persons
    group by gemeente_code, discipline, year
),

institution_counts as (
    select
        gemeente_code,
        discipline,
        year,
        institution_code,
        count(distinct person_key) as n_persons,
        row_number() over (
            partition by gemeente_code, discipline, year
            order by count(distinct person_key) desc, institution_code
        ) as size_rank
    from person_disciplines
    group by gemeente_code, discipline, year, institution_code
),

contributions as (
    select
        gemeente_code,
        discipline,
        year,
        sum(n_persons) as institution_persons,
        sum(case when size_rank <= 2 then n_persons else 0 end) as institution_top2_persons
    from institution_counts
    group by gemeente_code, discipline, year
),

discipline_years as (
    select
        discipline,
        year,
        count(*) as n_institutions
    from institution_years
    group by discipline, year
),

final as (
    select
        municipalities.gemeente_code,
        municipalities.gemeente_naam,
        discipline_years.discipline,
        discipline_years.year,
        municipalities.population,
        discipline_years.n_institutions,
        coalesce(persons.n_persons, 0) as n_persons,
        coalesce(persons.key_persons, 0) as key_persons,
        coalesce(contributions.institution_persons, 0) as institution_persons,
        coalesce(contributions.institution_top2_persons, 0) as institution_top2_persons,
        fingerprints.year_fingerprint
    from discipline_years
    inner join fingerprints on discipline_years.year = fingerprints.year
    cross join municipalities
    left join persons
        on municipalities.gemeente_code = persons.gemeente_code
        and discipline_years.discipline = persons.discipline
        and discipline_years.year = persons.year
    left join contributions
        on municipalities.gemeente_code = contributions.gemeente_code
        and discipline_years.discipline = contributions.discipline
        and discipline_years.year = contributions.year
)

select * from final
