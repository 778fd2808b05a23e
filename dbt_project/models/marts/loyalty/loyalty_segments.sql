-- Segments per institution and year: the institution's persons with a sector-wide key by
-- sector-wide intensity (light, medium, intensive) and breadth (1, 2, 3+ disciplines). The nine
-- cells add up to those persons, so they form a set for secondary suppression.
with cells as (
    select * from {{ ref('int_loyalty_segment_cells') }}
),

primary_suppression as (
    select
        institution_code,
        year,
        intensity,
        breadth,
        segment_order,
        n_persons,
        sum(n_persons) over (partition by institution_code, year) as n_total,
        key_persons,
        sum(key_persons) over (partition by institution_code, year) as key_total,
        {{ k_fails('n_persons') }} as is_withheld
    from cells
),

secondary as (
    {{ secondary_suppression(
        'primary_suppression',
        ['institution_code', 'year', 'intensity', 'breadth', 'segment_order', 'n_persons',
         'n_total', 'key_persons', 'key_total'],
        set_columns=['institution_code', 'year'],
        n_column='n_persons', flag_column='is_withheld', tiebreak=['segment_order']
    ) }}
),

perturbed as (
    {{ with_perturbed_counts('secondary', [('n_persons', 'key_persons'), ('n_total', 'key_total')]) }}
),

final as (
    select
        institution_code,
        year,
        intensity,
        breadth,
        case when not is_withheld then n_persons_p end as n_persons,
        case
            when not is_withheld then {{ k_share('n_persons', 'n_total', 'n_persons_p', 'n_total_p') }}
        end as share,
        is_withheld or {{ k_fails('n_total') }} as suppressed
    from perturbed
)

select * from final
