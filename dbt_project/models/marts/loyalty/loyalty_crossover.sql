-- Crossover (overlap met andere instellingen) per institution, year and discipline: of the
-- institution's persons with a sector-wide key, how many also visited another institution of
-- that discipline in the same year. Each cell splits the base in two (visited, not visited), so
-- both parts need k. Cells do not add up (a person can visit several disciplines).
-- "Never a named other institution" (metrics.md): a discipline with 1 to 4 other institutions
-- in the year would make the cell the overlap with one of a handful of known members, so it is
-- withheld whatever its count, by the same minimum as peer statistics (peer_min_institutions).
with cells as (
    select * from {{ ref('int_loyalty_crossover_cells') }}
),

discipline_sizes as (
    select year, discipline, count(*) as n_institutions
    from {{ ref('int_institution_years') }}
    group by year, discipline
),

perturbed as (
    {{ with_perturbed_counts('cells', [('n_persons', 'key_persons'), ('n_base', 'key_base')]) }}
),

sized as (
    select
        perturbed.*,
        coalesce(discipline_sizes.n_institutions, 0)
            - case when perturbed.is_own_discipline then 1 else 0 end as n_other_institutions
    from perturbed
    left join discipline_sizes
        on perturbed.year = discipline_sizes.year
        and perturbed.discipline = discipline_sizes.discipline
),

final as (
    select
        institution_code,
        year,
        discipline,
        is_own_discipline,
        {{ k_count('n_base', 'n_base_p') }} as n_base_persons,
        case
            when n_other_institutions between 1 and {{ var('peer_min_institutions') }} - 1 then null
            when n_persons = 0 or {{ k_split_passes('n_persons', 'n_base') }} then n_persons_p
        end as n_persons,
        case
            when n_other_institutions not between 1 and {{ var('peer_min_institutions') }} - 1
                then {{ k_share_split('n_persons', 'n_base', 'n_persons_p', 'n_base_p') }}
        end as share,
        n_other_institutions between 1 and {{ var('peer_min_institutions') }} - 1
            or (n_base > 0 and not {{ k_split_passes('n_persons', 'n_base') }}) as suppressed
    from sized
)

select * from final
