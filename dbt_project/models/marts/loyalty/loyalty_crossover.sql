-- Crossover (overlap met andere instellingen) per institution, year and discipline: of the
-- institution's persons with a sector-wide key, how many also visited another institution of
-- that discipline in the same year. Each cell splits the base in two (visited, not visited), so
-- both parts need k. Cells do not add up (a person can visit several disciplines).
with cells as (
    select * from {{ ref('int_loyalty_crossover_cells') }}
),

perturbed as (
    {{ with_perturbed_counts('cells', [('n_persons', 'key_persons'), ('n_base', 'key_base')]) }}
),

final as (
    select
        institution_code,
        year,
        discipline,
        is_own_discipline,
        {{ k_count('n_base', 'n_base_p') }} as n_base_persons,
        case
            when n_persons = 0 or {{ k_split_passes('n_persons', 'n_base') }} then n_persons_p
        end as n_persons,
        {{ k_share_split('n_persons', 'n_base', 'n_persons_p', 'n_base_p') }} as share,
        n_base > 0 and not {{ k_split_passes('n_persons', 'n_base') }} as suppressed
    from perturbed
)

select * from final
