-- Cohorts (instroomcohorten) per institution: for each first-visit year, the persons still
-- active (visiting again) 0, 1, 2, 3... years on, as far as the data reaches. Disclosure control
-- is decided in int_loyalty_cohorts (the cells of one year form a set adding up to n_persons).
with cohorts as (
    select * from {{ ref('int_loyalty_cohorts') }}
),

final as (
    select
        institution_code,
        cohort_year,
        year,
        cast(years_since as integer) as years_since,
        case when not is_cohort_withheld then n_cohort_p end as n_cohort,
        case when not is_withheld then n_active_p end as n_persons,
        case
            when not is_withheld and not is_cohort_withheld
                then {{ k_share('n_active', 'n_cohort', 'n_active_p', 'n_cohort_p') }}
        end as share_active,
        is_withheld or (is_cohort_withheld and n_cohort > 0) as suppressed
    from cohorts
)

select * from final
