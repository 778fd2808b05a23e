-- Loyalty summary (metrics.md, product 2) per institution and year. n_new and n_returning add up
-- to n_persons and follow the cohorts' suppression of the new persons (int_loyalty_cohorts);
-- new_retention is the cohort of year-1 active in the year, published as in loyalty_cohorts.
-- Open years show perturbed counts (macros/perturbation.sql); withholding uses exact counts.
with person_counts as (
    select * from {{ ref('int_institution_year_person_counts') }}
),

cohorts as (
    select * from {{ ref('int_loyalty_cohorts') }}
),

-- institution-years with a withheld frequency band: their avg_visits is withheld too, because
-- avg_visits x n_persons is the year's number of visits, which with the published bands can
-- give away the withheld ones (loyalty_frequency)
frequency_withheld as (
    select institution_code, year
    from {{ ref('loyalty_frequency') }}
    where n_persons is null
    group by institution_code, year
),

joined as (
    select
        person_counts.*,
        coalesce(new_persons.is_withheld, false) as is_new_withheld,
        frequency_withheld.year is not null as is_frequency_withheld,
        previous_cohort.n_active as n_previous_new_active,
        previous_cohort.n_cohort as n_previous_cohort,
        previous_cohort.n_active_p as n_previous_new_active_p,
        previous_cohort.n_cohort_p as n_previous_cohort_p,
        previous_cohort.is_withheld as is_previous_cohort_cell_withheld,
        previous_cohort.is_cohort_withheld as is_previous_cohort_withheld
    from person_counts
    left join cohorts as new_persons
        on person_counts.institution_code = new_persons.institution_code
        and person_counts.year = new_persons.year
        and new_persons.cohort_year = person_counts.year
    left join cohorts as previous_cohort
        on person_counts.institution_code = previous_cohort.institution_code
        and person_counts.year = previous_cohort.year
        and previous_cohort.cohort_year = person_counts.year - 1
    left join frequency_withheld
        on person_counts.institution_code = frequency_withheld.institution_code
        and person_counts.year = frequency_withheld.year
),

perturbed as (
    {{ with_perturbed_counts('joined', [
        ('n_persons', 'key_persons'),
        ('n_new', 'key_new'),
        ('n_returning', 'key_returning'),
        ('n_previous', 'key_previous', 'joined.year - 1'),
        ('n_previous_returned', 'key_previous_returned'),
        ('n_lapsed', 'key_lapsed'),
    ]) }}
),

published as (
    select
        institution_code,
        year,
        {{ k_count('n_persons', 'n_persons_p') }} as n_persons,
        case when not is_new_withheld then {{ k_count('n_new', 'n_new_p') }} end as n_new,
        case
            when n_returning = 0 then 0
            when not is_new_withheld then {{ k_count('n_returning', 'n_returning_p') }}
        end as n_returning,
        {{ k_share_split('n_previous_returned', 'n_previous', 'n_previous_returned_p',
                         'n_previous_p') }} as retention,
        case
            when not is_previous_cohort_cell_withheld and not is_previous_cohort_withheld
                then {{ k_share('n_previous_new_active', 'n_previous_cohort',
                                'n_previous_new_active_p', 'n_previous_cohort_p') }}
        end as new_retention,
        case
            when not is_frequency_withheld then {{ k_mean('visits', 'n_persons', 'n_persons_p') }}
        end as avg_visits,
        {{ k_mean('spend', 'n_persons', 'n_persons_p') }} as avg_spend,
        {{ k_count('n_lapsed', 'n_lapsed_p') }} as n_lapsed,
        n_persons as n_persons_raw,
        n_new as n_new_raw,
        n_previous,
        n_previous_new,
        n_lapsed as n_lapsed_raw
    from perturbed
),

final as (
    select
        institution_code,
        year,
        cast(n_persons as bigint) as n_persons,
        cast(n_new as bigint) as n_new,
        cast(n_returning as bigint) as n_returning,
        retention,
        new_retention,
        avg_visits,
        avg_spend,
        cast(n_lapsed as bigint) as n_lapsed,
        coalesce(
            (n_persons_raw > 0 and (n_persons is null or avg_visits is null))
            or (n_new_raw > 0 and n_new is null)
            or (n_persons_raw > n_new_raw and n_returning is null)
            or (n_previous > 0 and retention is null)
            or (n_previous_new > 0 and new_retention is null)
            or (n_lapsed_raw > 0 and n_lapsed is null),
            false
        ) as suppressed
    from published
)

select * from final
