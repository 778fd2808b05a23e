-- Peer-group statistics per institution, year and benchmark metric (long): over the members of
-- the institution's peer group (itself included) whose own value is published, n_institutions
-- and the mean (groups of >= 5), the quartiles and the institution's percentile rank (>= 10).
-- The mean of an additive metric is its peer total divided by the group size, so it is withheld
-- when the two largest institutions make up more than 85% of that total (dominance rule).
{%- set metrics = benchmark_metrics() %}

with own as (
    select * from {{ ref('int_benchmark_own') }}
),

peer_groups as (
    select * from {{ ref('int_peer_groups') }}
),

peer_members as (
    select * from {{ ref('int_peer_group_members') }}
),

metric_list as (
    {%- for metric in metrics %}
    select
        '{{ metric.name }}' as metric,
        {{ loop.index }} as metric_order,
        {{ 'true' if metric.additive else 'false' }} as is_additive
    {%- if not loop.last %}
    union all{% endif %}
    {%- endfor %}
),

own_long as (
    {%- for metric in metrics %}
    select institution_code, year, '{{ metric.name }}' as metric, cast({{ metric.name }} as double) as value
    from own
    {%- if not loop.last %}
    union all{% endif %}
    {%- endfor %}
),

member_values as (
    select
        peer_members.year,
        peer_members.peer_level,
        peer_members.peer_group,
        own_long.metric,
        peer_members.member_code,
        own_long.value,
        row_number() over (
            partition by
                peer_members.year, peer_members.peer_level, peer_members.peer_group, own_long.metric
            order by own_long.value desc, peer_members.member_code
        ) as size_rank,
        percent_rank() over (
            partition by
                peer_members.year, peer_members.peer_level, peer_members.peer_group, own_long.metric
            order by own_long.value
        ) as percent_rank
    from peer_members
    inner join own_long
        on peer_members.member_code = own_long.institution_code
        and peer_members.year = own_long.year
    where own_long.value is not null
),

group_stats as (
    select
        year,
        peer_level,
        peer_group,
        metric,
        count(*) as n_institutions,
        avg(value) as mean,
        sum(value) as total,
        sum(case when size_rank <= 2 then value else 0 end) as top2,
        percentile_cont(0.25) within group (order by value) as p25,
        percentile_cont(0.5) within group (order by value) as median,
        percentile_cont(0.75) within group (order by value) as p75
    from member_values
    group by year, peer_level, peer_group, metric
),

final as (
    select
        peer_groups.institution_code,
        peer_groups.year,
        metric_list.metric,
        metric_list.metric_order,
        peer_groups.peer_level,
        peer_groups.peer_group,
        coalesce(group_stats.n_institutions, 0) as n_institutions,
        case
            when group_stats.n_institutions >= {{ var('peer_min_institutions') }}
                and not (
                    metric_list.is_additive
                    and {{ dominated('group_stats.top2', 'group_stats.total') }}
                )
                then group_stats.mean
        end as mean,
        case
            when group_stats.n_institutions >= {{ var('peer_min_institutions_quartiles') }}
                then group_stats.p25
        end as p25,
        case
            when group_stats.n_institutions >= {{ var('peer_min_institutions_quartiles') }}
                then group_stats.median
        end as median,
        case
            when group_stats.n_institutions >= {{ var('peer_min_institutions_quartiles') }}
                then group_stats.p75
        end as p75,
        case
            when group_stats.n_institutions >= {{ var('peer_min_institutions_quartiles') }}
                then 100 * own_value.percent_rank
        end as percentile_rank
    from peer_groups
    cross join metric_list
    left join group_stats
        on peer_groups.year = group_stats.year
        and peer_groups.peer_level = group_stats.peer_level
        and peer_groups.peer_group = group_stats.peer_group
        and metric_list.metric = group_stats.metric
    left join member_values as own_value
        on peer_groups.year = own_value.year
        and peer_groups.peer_level = own_value.peer_level
        and peer_groups.peer_group = own_value.peer_group
        and metric_list.metric = own_value.metric
        and peer_groups.institution_code = own_value.member_code
)

select * from final
