-- The institution's own benchmark values per year, after disclosure control: the numbers the
-- benchmark publishes and the peer statistics are computed from (a value withheld from its own
-- institution never enters a peer statistic either). Person counts and shares over persons
-- follow the k rule; a share of a two-way split also needs k in the other part; and the shares
-- that are sums of cells published elsewhere follow those cells' suppression: share_new the
-- cohorts' new persons, share_young the age bands, share_local the own municipality's cell.
-- In open years the counts shown, and the shares and means over persons, come from perturbed
-- counts (macros/perturbation.sql); every decision to withhold is taken on the exact counts.
with ticket_metrics as (
    select * from {{ ref('int_benchmark_ticket_metrics') }}
),

person_counts as (
    select * from {{ ref('int_institution_year_person_counts') }}
),

cohorts as (
    select * from {{ ref('int_loyalty_cohorts') }}
    where years_since = 0
),

age_cells as (
    select * from {{ ref('int_market_age_cells') }}
),

area_cells as (
    select * from {{ ref('int_market_area_disclosed') }}
    where area_level = 'gemeente'
),

institutions as (
    select * from {{ ref('int_institution_years') }}
),

-- share_young = (12-17 + 18-29) / all bands: it gives away a withheld band unless the withheld
-- bands lie all among the young ones or all among the others
age_withheld as (
    select
        institution_code,
        year,
        sum(case when is_withheld and age_band in ('12-17', '18-29') then 1 else 0 end)
            as n_withheld_young,
        sum(case when is_withheld and age_band not in ('12-17', '18-29') then 1 else 0 end)
            as n_withheld_other
    from age_cells
    group by institution_code, year
),

own_municipality as (
    select
        institutions.institution_code,
        institutions.year,
        area_cells.is_withheld
    from institutions
    inner join area_cells
        on institutions.institution_code = area_cells.institution_code
        and institutions.year = area_cells.year
        and institutions.gemeente_code = area_cells.area_code
),

joined as (
    select
        -- not ticket_metrics.*: its versions say what it was computed from, not a metric
        ticket_metrics.institution_code,
        ticket_metrics.year,
        ticket_metrics.tickets,
        ticket_metrics.revenue,
        ticket_metrics.avg_price,
        ticket_metrics.occupancy,
        ticket_metrics.share_online,
        ticket_metrics.share_discounted,
        ticket_metrics.lead_time_days_median,
        ticket_metrics.identified_tickets,
        ticket_metrics.share_identified,
        person_counts.n_persons as n_persons_raw,
        person_counts.n_new,
        person_counts.n_young,
        person_counts.n_known_age,
        person_counts.n_local,
        person_counts.n_known_area,
        person_counts.n_previous,
        person_counts.n_previous_returned,
        person_counts.key_persons,
        person_counts.key_new,
        person_counts.key_young,
        person_counts.key_known_age,
        person_counts.key_local,
        person_counts.key_known_area,
        person_counts.key_previous,
        person_counts.key_previous_returned,
        coalesce(cohorts.is_withheld, false) as is_new_withheld,
        coalesce(age_withheld.n_withheld_young, 0) > 0
            and coalesce(age_withheld.n_withheld_other, 0) > 0 as is_young_straddling,
        coalesce(own_municipality.is_withheld, false) as is_local_withheld
    from ticket_metrics
    inner join person_counts
        on ticket_metrics.institution_code = person_counts.institution_code
        and ticket_metrics.year = person_counts.year
    left join cohorts
        on ticket_metrics.institution_code = cohorts.institution_code
        and ticket_metrics.year = cohorts.year
    left join age_withheld
        on ticket_metrics.institution_code = age_withheld.institution_code
        and ticket_metrics.year = age_withheld.year
    left join own_municipality
        on ticket_metrics.institution_code = own_municipality.institution_code
        and ticket_metrics.year = own_municipality.year
),

perturbed as (
    {{ with_perturbed_counts('joined', [
        ('n_persons_raw', 'key_persons'),
        ('n_new', 'key_new'),
        ('n_young', 'key_young'),
        ('n_known_age', 'key_known_age'),
        ('n_local', 'key_local'),
        ('n_known_area', 'key_known_area'),
        ('n_previous', 'key_previous', 'joined.year - 1'),
        ('n_previous_returned', 'key_previous_returned'),
    ]) }}
),

published as (
    select
        institution_code,
        year,
        tickets,
        revenue,
        avg_price,
        occupancy,
        share_online,
        share_discounted,
        lead_time_days_median,
        share_identified,
        {{ k_count('n_persons_raw', 'n_persons_raw_p') }} as n_persons,
        {{ k_mean('identified_tickets', 'n_persons_raw', 'n_persons_raw_p') }}
            as tickets_per_person,
        case
            when not is_new_withheld
                then {{ k_share_split('n_new', 'n_persons_raw', 'n_new_p', 'n_persons_raw_p') }}
        end as share_new,
        {{ k_share_split('n_previous_returned', 'n_previous', 'n_previous_returned_p',
                         'n_previous_p') }} as retention,
        case
            when not is_young_straddling
                then {{ k_share_split('n_young', 'n_known_age', 'n_young_p', 'n_known_age_p') }}
        end as share_young,
        case
            when not is_local_withheld
                then {{ k_share_split('n_local', 'n_known_area', 'n_local_p', 'n_known_area_p') }}
        end as share_local,
        n_persons_raw,
        n_previous,
        n_known_age,
        n_known_area,
        n_local
    from perturbed
),

final as (
    select
        institution_code,
        year,
        tickets,
        revenue,
        avg_price,
        occupancy,
        share_online,
        share_discounted,
        lead_time_days_median,
        share_identified,
        n_persons,
        tickets_per_person,
        share_new,
        retention,
        share_young,
        share_local,
        coalesce(
            (n_persons_raw > 0 and n_persons is null)
            or (n_persons_raw > 0 and tickets_per_person is null)
            or (n_persons_raw > 0 and share_new is null)
            or (n_previous > 0 and retention is null)
            or (n_known_age > 0 and share_young is null)
            or (n_known_area > 0 and n_local is not null and share_local is null),
            false
        ) as suppressed
    from published
)

select * from final
