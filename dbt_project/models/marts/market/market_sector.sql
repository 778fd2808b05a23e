-- Sector penetration (sectorpenetratie) per municipality, discipline and year: distinct persons
-- living in the municipality who visited an institution of the discipline, per 1,000
-- inhabitants. A cell is withheld below k persons, and for business confidentiality when the
-- discipline has fewer than 5 institutions in the year (zeros included) or when the two largest
-- institutions make up more than 85% of the cell. The municipalities of one discipline and year
-- form a set for secondary suppression.
with cells as (
    select * from {{ ref('int_market_sector_cells') }}
),

primary_suppression as (
    select
        cells.*,
        coalesce(
            n_institutions < {{ var('peer_min_institutions') }}
            or {{ k_fails('n_persons') }}
            or {{ dominated('institution_top2_persons', 'institution_persons') }},
            true
        ) as is_withheld
    from cells
),

secondary as (
    {{ secondary_suppression(
        'primary_suppression',
        ['gemeente_code', 'gemeente_naam', 'discipline', 'year', 'population', 'n_institutions',
         'n_persons', 'key_persons'],
        set_columns=['discipline', 'year'],
        n_column='n_persons', flag_column='is_withheld', tiebreak=['gemeente_code']
    ) }}
),

perturbed as (
    {{ with_perturbed_counts('secondary', [('n_persons', 'key_persons')]) }}
),

final as (
    select
        gemeente_code,
        gemeente_naam,
        discipline,
        year,
        cast(population as bigint) as population,
        cast(n_institutions as integer) as n_institutions,
        case when not is_withheld then n_persons_p end as n_persons,
        cast(
            case when not is_withheld and population > 0 then 1000.0 * n_persons_p / population end
            as double
        ) as penetration,
        is_withheld as suppressed
    from perturbed
)

select * from final
