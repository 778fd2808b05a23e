-- Segments per institution and year: the institution's persons with a sector-wide key by their
-- sector-wide intensity (light 1, medium 2-4, intensive 5+ visits in the sector in the year) and
-- breadth (1, 2, 3+ disciplines). All nine cells present (0 where no one): raw counts, with the
-- sum of the persons' record keys (the perturbation's cell key).
with institution_years as (
    select * from {{ ref('int_institution_years') }}
),

person_years as (
    select * from {{ ref('int_person_institution_years_keyed') }}
    where has_sector_key
),

sector_years as (
    select * from {{ ref('int_person_sector_years') }}
),

intensities as (
    {{ label_table('intensity', ['light', 'medium', 'intensive']) }}
),

breadths as (
    {{ label_table('breadth', ['1', '2', '3+']) }}
),

counts as (
    select
        person_years.institution_code,
        person_years.year,
        sector_years.intensity,
        sector_years.breadth,
        count(*) as n_persons,
        sum(person_years.record_key) as key_persons
    from person_years
    inner join sector_years
        on person_years.person_key = sector_years.person_key
        and person_years.year = sector_years.year
    group by
        person_years.institution_code,
        person_years.year,
        sector_years.intensity,
        sector_years.breadth
),

final as (
    select
        institution_years.institution_code,
        institution_years.year,
        intensities.intensity,
        breadths.breadth,
        intensities.sort_order * 10 + breadths.sort_order as segment_order,
        coalesce(counts.n_persons, 0) as n_persons,
        coalesce(counts.key_persons, 0) as key_persons
    from institution_years
    cross join intensities
    cross join breadths
    left join counts
        on institution_years.institution_code = counts.institution_code
        and institution_years.year = counts.year
        and intensities.intensity = counts.intensity
        and breadths.breadth = counts.breadth
)

select * from final
