-- Visit frequency (bezoekfrequentie) per institution, year and band: persons by the number of
-- distinct events they attended in the year (1, 2, 3-5, 6+). The bands add up to n_persons of
-- loyalty_summary, so they form a set for secondary suppression.
with cells as (
    select * from {{ ref('int_loyalty_frequency_cells') }}
),

primary_suppression as (
    select
        institution_code,
        year,
        frequency_band,
        band_order,
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
        ['institution_code', 'year', 'frequency_band', 'band_order', 'n_persons', 'n_total',
         'key_persons', 'key_total'],
        set_columns=['institution_code', 'year'],
        n_column='n_persons', flag_column='is_withheld', tiebreak=['band_order']
    ) }}
),

perturbed as (
    {{ with_perturbed_counts('secondary', [('n_persons', 'key_persons'), ('n_total', 'key_total')]) }}
),

final as (
    select
        institution_code,
        year,
        frequency_band,
        cast(band_order as integer) as band_order,
        case when not is_withheld then n_persons_p end as n_persons,
        case
            when not is_withheld then {{ k_share('n_persons', 'n_total', 'n_persons_p', 'n_total_p') }}
        end as share,
        is_withheld or {{ k_fails('n_total') }} as suppressed
    from perturbed
)

select * from final
