-- The peer group of each institution and year (metrics.md): same primary discipline and size
-- class; a group with fewer than 5 institutions falls back to the whole discipline, then to the
-- sector. peer_level says which level was used, peer_group names the group within that level.
with institution_years as (
    select * from {{ ref('int_institution_years') }}
),

group_sizes as (
    select
        institution_code,
        year,
        discipline,
        size_class,
        count(*) over (partition by year, discipline, size_class) as n_discipline_size,
        count(*) over (partition by year, discipline) as n_discipline,
        count(*) over (partition by year) as n_sector
    from institution_years
),

final as (
    select
        institution_code,
        year,
        discipline,
        size_class,
        case
            when n_discipline_size >= {{ var('peer_min_institutions') }} then 'discipline_size'
            when n_discipline >= {{ var('peer_min_institutions') }} then 'discipline'
            else 'sector'
        end as peer_level,
        case
            when n_discipline_size >= {{ var('peer_min_institutions') }}
                then {{ dbt.concat(["discipline", "'|'", "size_class"]) }}
            when n_discipline >= {{ var('peer_min_institutions') }} then discipline
            else 'sector'
        end as peer_group,
        case
            when n_discipline_size >= {{ var('peer_min_institutions') }} then n_discipline_size
            when n_discipline >= {{ var('peer_min_institutions') }} then n_discipline
            else n_sector
        end as peer_n_institutions
    from group_sizes
)

select * from final
