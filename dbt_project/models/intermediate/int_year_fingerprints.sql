-- One row per year: the fingerprint of everything the year-incremental models read of that
-- year (macros/incremental.sql, "Incremental by year"): the year's person-years (the columns
-- those models use), its institution-years with their disciplines, and, the same for every
-- year, the reference data and the list of the sector's disciplines (the crossover has a row
-- for every discipline of any year). Rebuilt in full at every build (one scan of the
-- person-years); never published.
with person_years as (
    select
        year,
        {{ rows_fingerprint(['institution_code', 'person_key', 'has_sector_key', 'visits',
                             'pc4', 'record_key']) }} as fingerprint
    from {{ ref('int_person_institution_years') }}
    group by year
),

institution_years as (
    select
        year,
        {{ rows_fingerprint(['institution_code', 'discipline']) }} as fingerprint
    from {{ ref('int_institution_years') }}
    group by year
),

disciplines as (
    select string_agg(discipline, ',' order by discipline) as all_disciplines
    from (select distinct discipline from {{ ref('int_institution_years') }}) as distinct_disciplines
),

reference_data as (
    select * from {{ ref('int_reference_version') }}
),

final as (
    select
        institution_years.year,
        md5(
            {{ dbt.concat([
                "institution_years.fingerprint", "'|'",
                "coalesce(person_years.fingerprint, '')", "'|'",
                "coalesce(disciplines.all_disciplines, '')", "'|'",
                "reference_data.reference_version",
            ]) }}
        ) as year_fingerprint
    from institution_years
    left join person_years on institution_years.year = person_years.year
    cross join disciplines
    cross join reference_data
)

select * from final
