-- Market per institution, year and area (every PC4 and every municipality of the reference,
-- also where the institution has no one): own persons, population, distance, and the peer
-- group's persons there (sum over the group's institutions and its two largest contributions,
-- for the dominance rule). Raw counts before disclosure control, with the sum of the persons'
-- record keys (key_persons) and the peer group's persons as the sum of its institutions' counts
-- as each of them shows them (peer_persons_p: perturbed in open years, macros/perturbation.sql).
with institution_years as (
    select * from {{ ref('int_institution_years') }}
),

peer_groups as (
    select * from {{ ref('int_peer_groups') }}
),

peer_members as (
    select * from {{ ref('int_peer_group_members') }}
),

person_areas as (
    select * from {{ ref('int_person_areas') }}
),

areas as (
    select * from {{ ref('dim_area') }}
),

municipalities as (
    select * from {{ ref('dim_municipality') }}
),

distances as (
    select * from {{ ref('int_institution_area_distances') }}
),

own_counts as (
    select
        institution_code, year, 'pc4' as area_level, pc4 as area_code, count(*) as n_persons,
        sum(record_key) as key_persons
    from person_areas
    group by institution_code, year, pc4
    union all
    select
        institution_code, year, 'gemeente' as area_level, gemeente_code as area_code,
        count(*) as n_persons, sum(record_key) as key_persons
    from person_areas
    group by institution_code, year, gemeente_code
),

own_counts_perturbed as (
    {{ with_perturbed_counts('own_counts', [('n_persons', 'key_persons')]) }}
),

area_list as (
    select
        'pc4' as area_level,
        pc4 as area_code,
        pc4 as area_name,
        gemeente_code,
        population
    from areas
    union all
    select
        'gemeente' as area_level,
        gemeente_code as area_code,
        gemeente_naam as area_name,
        gemeente_code,
        population
    from municipalities
),

member_counts as (
    select
        peer_members.year,
        peer_members.peer_level,
        peer_members.peer_group,
        own_counts.area_level,
        own_counts.area_code,
        own_counts.n_persons,
        own_counts.n_persons_p,
        row_number() over (
            partition by
                peer_members.year,
                peer_members.peer_level,
                peer_members.peer_group,
                own_counts.area_level,
                own_counts.area_code
            order by own_counts.n_persons desc, peer_members.member_code
        ) as size_rank
    from peer_members
    inner join own_counts_perturbed as own_counts
        on peer_members.member_code = own_counts.institution_code
        and peer_members.year = own_counts.year
),

group_counts as (
    select
        year,
        peer_level,
        peer_group,
        area_level,
        area_code,
        sum(n_persons) as peer_persons,
        sum(n_persons_p) as peer_persons_p,
        sum(case when size_rank <= 2 then n_persons else 0 end) as peer_top2_persons
    from member_counts
    group by year, peer_level, peer_group, area_level, area_code
),

final as (
    select
        institution_years.institution_code,
        institution_years.year,
        area_list.area_level,
        area_list.area_code,
        area_list.area_name,
        area_list.gemeente_code,
        area_list.population,
        distances.distance_km,
        distances.distance_band,
        coalesce(own_counts.n_persons, 0) as n_persons,
        coalesce(own_counts.n_persons_p, 0) as n_persons_p,
        peer_groups.peer_level,
        peer_groups.peer_n_institutions,
        coalesce(group_counts.peer_persons, 0) as peer_persons,
        coalesce(group_counts.peer_persons_p, 0) as peer_persons_p,
        coalesce(group_counts.peer_top2_persons, 0) as peer_top2_persons
    from institution_years
    inner join peer_groups
        on institution_years.institution_code = peer_groups.institution_code
        and institution_years.year = peer_groups.year
    cross join area_list
    left join distances
        on institution_years.institution_code = distances.institution_code
        and area_list.area_level = distances.area_level
        and area_list.area_code = distances.area_code
    left join own_counts_perturbed as own_counts
        on institution_years.institution_code = own_counts.institution_code
        and institution_years.year = own_counts.year
        and area_list.area_level = own_counts.area_level
        and area_list.area_code = own_counts.area_code
    left join group_counts
        on peer_groups.year = group_counts.year
        and peer_groups.peer_level = group_counts.peer_level
        and peer_groups.peer_group = group_counts.peer_group
        and area_list.area_level = group_counts.area_level
        and area_list.area_code = group_counts.area_code
)

select * from final
