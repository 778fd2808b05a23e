-- Raw person counts per institution and year, before disclosure control: the numerators and
-- denominators of the benchmark's and the loyalty summary's person metrics. Beside each count
-- the sum of its persons' record keys (key_*), from which the perturbation of open years takes
-- the cell key (macros/perturbation.sql).
-- depends_on: {{ ref('int_institution_versions') }}
-- Incremental by institution, rebuilt in full when the reference data changes (dbt_project.yml,
-- macros/incremental.sql): every count below reads one institution's persons only.
with institution_years as (
    select * from {{ ref('int_institution_years') }}
    where {{ only_changed_institutions() }}
),

person_years as (
    select * from {{ ref('int_person_institution_years_keyed') }}
    where {{ only_changed_institutions() }}
),

versions as (
    select * from {{ ref('int_institution_versions') }}
),

reference_data as (
    select * from {{ ref('int_reference_version') }}
),

areas as (
    select * from {{ ref('stg_reference__pc4') }}
),

person_years_located as (
    select
        person_years.*,
        home.gemeente_code as home_gemeente_code
    from person_years
    left join areas as home on person_years.pc4 = home.pc4
),

current_year as (
    select
        person_years_located.institution_code,
        person_years_located.year,
        count(*) as n_persons,
        sum(case when person_years_located.is_new then 1 else 0 end) as n_new,
        sum(person_years_located.visits) as visits,
        sum(person_years_located.spend) as spend,
        sum(person_years_located.tickets) as identified_tickets,
        sum(case when person_years_located.age_band in ('12-17', '18-29') then 1 else 0 end)
            as n_young,
        sum(case when person_years_located.age_band is not null then 1 else 0 end)
            as n_known_age,
        sum(
            case
                when person_years_located.home_gemeente_code = institution_years.gemeente_code
                    then 1
                else 0
            end
        ) as n_local,
        sum(case when person_years_located.home_gemeente_code is not null then 1 else 0 end)
            as n_known_area,
        sum(case when person_years_located.has_sector_key then 1 else 0 end) as n_sector_key,
        sum(person_years_located.record_key) as key_persons,
        sum(case when person_years_located.is_new then person_years_located.record_key else 0 end)
            as key_new,
        sum(
            case
                when person_years_located.age_band in ('12-17', '18-29')
                    then person_years_located.record_key
                else 0
            end
        ) as key_young,
        sum(
            case
                when person_years_located.age_band is not null then person_years_located.record_key
                else 0
            end
        ) as key_known_age,
        sum(
            case
                when person_years_located.home_gemeente_code = institution_years.gemeente_code
                    then person_years_located.record_key
                else 0
            end
        ) as key_local,
        sum(
            case
                when person_years_located.home_gemeente_code is not null
                    then person_years_located.record_key
                else 0
            end
        ) as key_known_area
    from person_years_located
    inner join institution_years
        on person_years_located.institution_code = institution_years.institution_code
        and person_years_located.year = institution_years.year
    group by person_years_located.institution_code, person_years_located.year
),

-- each person-year with whether the person came back the year after (returned) and the year
-- after that (returned_later): retention and lapsed both read these two self-joins. (Lapsed
-- was a join of every person-year to the three years it can end, grouped by person: 4.6M
-- rows at 10M tickets, 2.1 s against 1.4 s; docs/performance.md, sixteenth round.)
person_years_next as (
    select
        person_years.institution_code,
        person_years.year,
        person_years.is_new,
        person_years.record_key,
        person_years.last_visit_at,
        next_year.person_key is not null as returned,
        year_after.person_key is not null as returned_later
    from person_years
    left join person_years as next_year
        on person_years.institution_code = next_year.institution_code
        and person_years.person_key = next_year.person_key
        and next_year.year = person_years.year + 1
    left join person_years as year_after
        on person_years.institution_code = year_after.institution_code
        and person_years.person_key = year_after.person_key
        and year_after.year = person_years.year + 2
),

-- persons of year-1 and whether they came back in the year
previous_year as (
    select
        institution_code,
        year + 1 as year,
        count(*) as n_previous,
        sum(case when returned then 1 else 0 end) as n_previous_returned,
        sum(case when is_new then 1 else 0 end) as n_previous_new,
        sum(case when is_new and returned then 1 else 0 end) as n_previous_new_returned,
        sum(record_key) as key_previous,
        sum(case when returned then record_key else 0 end) as key_previous_returned
    from person_years_next
    group by institution_code, year + 1
),

-- lapsed (afgehaakt) in year Y: last visit 18-36 months before the end of Y, i.e. from
-- 1 January of Y-2 up to 30 June of Y-1 (counted in whole months: 18..35 months between the
-- month of the last visit and December of Y). So a person-year y counts once, for Y = y+1
-- when the person did not come back in y+1 and the year's last visit was in January-June,
-- and for Y = y+2 when the person came back neither in y+1 nor in y+2. (Y is only counted
-- where it is one of the institution's years: final joins these to institution_years.)
lapsed_persons as (
    select
        institution_code,
        year + 1 as year,
        record_key
    from person_years_next
    where not returned
      and cast(extract(month from last_visit_at) as integer) <= 6
    union all
    select
        institution_code,
        year + 2 as year,
        record_key
    from person_years_next
    where not returned
      and not returned_later
),

lapsed as (
    select
        institution_code,
        year,
        count(*) as n_lapsed,
        sum(record_key) as key_lapsed
    from lapsed_persons
    group by institution_code, year
),

final as (
    select
        institution_years.institution_code,
        institution_years.year,
        coalesce(current_year.n_persons, 0) as n_persons,
        coalesce(current_year.n_new, 0) as n_new,
        coalesce(current_year.n_persons, 0) - coalesce(current_year.n_new, 0) as n_returning,
        coalesce(current_year.visits, 0) as visits,
        coalesce(current_year.spend, 0) as spend,
        coalesce(current_year.identified_tickets, 0) as identified_tickets,
        coalesce(current_year.n_young, 0) as n_young,
        coalesce(current_year.n_known_age, 0) as n_known_age,
        -- unknown when the institution's own municipality is unknown
        case
            when institution_years.gemeente_code is not null
                then coalesce(current_year.n_local, 0)
        end as n_local,
        coalesce(current_year.n_known_area, 0) as n_known_area,
        coalesce(current_year.n_sector_key, 0) as n_sector_key,
        -- no previous year in the first year of the institution's data: retention unknown
        case
            when institution_years.year > institution_years.first_year
                then coalesce(previous_year.n_previous, 0)
        end as n_previous,
        case
            when institution_years.year > institution_years.first_year
                then coalesce(previous_year.n_previous_returned, 0)
        end as n_previous_returned,
        case
            when institution_years.year > institution_years.first_year
                then coalesce(previous_year.n_previous_new, 0)
        end as n_previous_new,
        case
            when institution_years.year > institution_years.first_year
                then coalesce(previous_year.n_previous_new_returned, 0)
        end as n_previous_new_returned,
        -- lapsed needs the data to reach back to 1 January of year-2
        case
            when institution_years.year - 2 >= institution_years.first_year
                then coalesce(lapsed.n_lapsed, 0)
        end as n_lapsed,
        coalesce(current_year.key_persons, 0) as key_persons,
        coalesce(current_year.key_new, 0) as key_new,
        coalesce(current_year.key_persons, 0) - coalesce(current_year.key_new, 0) as key_returning,
        coalesce(current_year.key_young, 0) as key_young,
        coalesce(current_year.key_known_age, 0) as key_known_age,
        coalesce(current_year.key_local, 0) as key_local,
        coalesce(current_year.key_known_area, 0) as key_known_area,
        coalesce(previous_year.key_previous, 0) as key_previous,
        coalesce(previous_year.key_previous_returned, 0) as key_previous_returned,
        coalesce(lapsed.key_lapsed, 0) as key_lapsed,
        versions.institution_version,
        reference_data.reference_version
    from institution_years
    left join versions on institution_years.institution_code = versions.institution_code
    cross join reference_data
    left join current_year
        on institution_years.institution_code = current_year.institution_code
        and institution_years.year = current_year.year
    left join previous_year
        on institution_years.institution_code = previous_year.institution_code
        and institution_years.year = previous_year.year
    left join lapsed
        on institution_years.institution_code = lapsed.institution_code
        and institution_years.year = lapsed.year
)

select * from final
