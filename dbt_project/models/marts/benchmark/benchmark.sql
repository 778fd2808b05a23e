-- Benchmark (metrics.md, product 1): per institution and year the institution's own values
-- beside its peer group's statistics, wide: <metric>_peer_n (institutions with a published
-- value), _peer_mean, _peer_p25, _peer_median, _peer_p75 and _peer_rank (percentile rank, 0-100).
-- Disclosure control is decided upstream (int_benchmark_own, int_benchmark_peer_stats).
{%- set metrics = benchmark_metrics() %}

with own as (
    select * from {{ ref('int_benchmark_own') }}
),

peer_groups as (
    select * from {{ ref('int_peer_groups') }}
),

peer_stats as (
    select * from {{ ref('int_benchmark_peer_stats') }}
),

peer_wide as (
    select
        institution_code,
        year
        {%- for metric in metrics %},
        max(case when metric = '{{ metric.name }}' then n_institutions end)
            as {{ metric.name }}_peer_n,
        max(case when metric = '{{ metric.name }}' then mean end) as {{ metric.name }}_peer_mean,
        max(case when metric = '{{ metric.name }}' then p25 end) as {{ metric.name }}_peer_p25,
        max(case when metric = '{{ metric.name }}' then median end)
            as {{ metric.name }}_peer_median,
        max(case when metric = '{{ metric.name }}' then p75 end) as {{ metric.name }}_peer_p75,
        max(case when metric = '{{ metric.name }}' then percentile_rank end)
            as {{ metric.name }}_peer_rank
        {%- endfor %}
    from peer_stats
    group by institution_code, year
),

final as (
    select
        own.institution_code,
        own.year,
        own.tickets,
        own.revenue,
        own.avg_price,
        own.occupancy,
        own.share_online,
        own.share_discounted,
        own.lead_time_days_median,
        own.share_identified,
        own.n_persons,
        own.tickets_per_person,
        own.share_new,
        own.retention,
        own.share_young,
        own.share_local,
        own.suppressed,
        peer_groups.size_class,
        peer_groups.peer_level,
        cast(peer_groups.peer_n_institutions as integer) as peer_n_institutions
        {%- for metric in metrics %},
        cast(peer_wide.{{ metric.name }}_peer_n as integer) as {{ metric.name }}_peer_n,
        cast(peer_wide.{{ metric.name }}_peer_mean as double) as {{ metric.name }}_peer_mean,
        cast(peer_wide.{{ metric.name }}_peer_p25 as double) as {{ metric.name }}_peer_p25,
        cast(peer_wide.{{ metric.name }}_peer_median as double) as {{ metric.name }}_peer_median,
        cast(peer_wide.{{ metric.name }}_peer_p75 as double) as {{ metric.name }}_peer_p75,
        cast(peer_wide.{{ metric.name }}_peer_rank as double) as {{ metric.name }}_peer_rank
        {%- endfor %}
    from own
    inner join peer_groups
        on own.institution_code = peer_groups.institution_code
        and own.year = peer_groups.year
    left join peer_wide
        on own.institution_code = peer_wide.institution_code
        and own.year = peer_wide.year
)

select * from final
