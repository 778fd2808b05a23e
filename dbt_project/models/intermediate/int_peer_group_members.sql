-- The members of every peer group in use: one row per group (year, level, group) and member.
-- Groups overlap across levels (a discipline group holds every size class), so they are listed
-- per level rather than derived from the members' own choice of level.
with institution_years as (
    select * from {{ ref('int_institution_years') }}
),

peer_groups as (
    select * from {{ ref('int_peer_groups') }}
),

memberships as (
    select
        year,
        'discipline_size' as peer_level,
        {{ dbt.concat(["discipline", "'|'", "size_class"]) }} as peer_group,
        institution_code as member_code
    from institution_years
    union all
    select year, 'discipline' as peer_level, discipline as peer_group, institution_code
    from institution_years
    union all
    select year, 'sector' as peer_level, 'sector' as peer_group, institution_code
    from institution_years
),

groups_in_use as (
    select distinct year, peer_level, peer_group
    from peer_groups
),

final as (
    select
        memberships.year,
        memberships.peer_level,
        memberships.peer_group,
        memberships.member_code
    from memberships
    inner join groups_in_use
        on memberships.year = groups_in_use.year
        and memberships.peer_level = groups_in_use.peer_level
        and memberships.peer_group = groups_in_use.peer_group
)

select * from final
