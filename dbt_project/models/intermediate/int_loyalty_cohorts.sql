-- Cohorts (instroomcohorten) with disclosure control: one cell per institution, first-visit year
-- (cohort_year) and year, holding the cohort's persons who visited in that year. For one
-- institution and year the cells of all cohorts add up to the year's n_persons, the cohort's own
-- first year being its new persons: a set, so secondary suppression runs over it. Decided here
-- once, because the loyalty summary (n_new, new_retention) and the benchmark (share_new) show
-- the same numbers and must withhold them alike. n_active_p and n_cohort_p are the counts shown
-- (perturbed in open years: the cell in its year, the cohort in its first year).
with institution_years as (
    select * from {{ ref('int_institution_years') }}
),

person_years as (
    select * from {{ ref('int_person_institution_years_keyed') }}
),

active as (
    select
        institution_code,
        first_year as cohort_year,
        year,
        count(*) as n_active,
        sum(record_key) as key_active
    from person_years
    group by institution_code, first_year, year
),

year_totals as (
    select
        institution_code,
        year,
        count(*) as n_persons
    from person_years
    group by institution_code, year
),

grid as (
    select
        cohort.institution_code,
        cohort.year as cohort_year,
        active_year.year
    from institution_years as cohort
    inner join institution_years as active_year
        on cohort.institution_code = active_year.institution_code
        and active_year.year >= cohort.year
),

cells as (
    select
        grid.institution_code,
        grid.cohort_year,
        grid.year,
        grid.year - grid.cohort_year as years_since,
        coalesce(active.n_active, 0) as n_active,
        coalesce(active.key_active, 0) as key_active,
        coalesce(year_totals.n_persons, 0) as n_persons_year
    from grid
    left join active
        on grid.institution_code = active.institution_code
        and grid.cohort_year = active.cohort_year
        and grid.year = active.year
    left join year_totals
        on grid.institution_code = year_totals.institution_code
        and grid.year = year_totals.year
),

with_cohort_size as (
    select
        cells.*,
        cohort_start.n_active as n_cohort,
        cohort_start.key_active as key_cohort
    from cells
    inner join cells as cohort_start
        on cells.institution_code = cohort_start.institution_code
        and cells.cohort_year = cohort_start.cohort_year
        and cohort_start.year = cohort_start.cohort_year
),

-- primary: the cell itself, and the rest of its two-way split (the new persons against the
-- returning ones; the cohort's active persons against its inactive ones), since the published
-- total gives the rest away
primary_suppression as (
    select
        institution_code,
        cohort_year,
        year,
        years_since,
        n_active,
        n_cohort,
        n_persons_year,
        key_active,
        key_cohort,
        case
            when years_since = 0
                then {{ k_fails('n_active') }} or {{ k_fails('(n_persons_year - n_active)') }}
            else {{ k_fails('n_active') }} or {{ k_fails('(n_cohort - n_active)') }}
        end as is_withheld
    from with_cohort_size
),

secondary as (
    {{ secondary_suppression(
        'primary_suppression',
        ['institution_code', 'cohort_year', 'year', 'years_since', 'n_active', 'n_cohort',
         'n_persons_year', 'key_active', 'key_cohort'],
        set_columns=['institution_code', 'year'],
        n_column='n_active',
        flag_column='is_withheld',
        tiebreak=['cohort_year'],
        prefer='years_since > 0'
    ) }}
),

with_cohort_withheld as (
    select
        secondary.*,
        cohort_start.is_withheld as is_cohort_withheld
    from secondary
    inner join secondary as cohort_start
        on secondary.institution_code = cohort_start.institution_code
        and secondary.cohort_year = cohort_start.cohort_year
        and cohort_start.year = cohort_start.cohort_year
),

final as (
    {{ with_perturbed_counts('with_cohort_withheld', [
        ('n_active', 'key_active'),
        ('n_cohort', 'key_cohort', 'with_cohort_withheld.cohort_year'),
    ]) }}
)

select * from final
