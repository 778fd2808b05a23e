{#- Bands and classes of metrics.md, in one place so every model bands alike. -#}

{#- Days from sale to event, by calendar date (metrics.md: lead time). -#}
{% macro lead_time_days(sold_at, event_start) -%}
    {{ dbt.datediff("cast(" ~ sold_at ~ " as date)", "cast(" ~ event_start ~ " as date)", "day") }}
{%- endmacro %}

{#- Age band at the event (metrics.md). -#}
{% macro age_band(age) -%}
    case
        when {{ age }} is null or {{ age }} < 0 or {{ age }} > 120 then null
        when {{ age }} < 12 then '0-11'
        when {{ age }} < 18 then '12-17'
        when {{ age }} < 30 then '18-29'
        when {{ age }} < 45 then '30-44'
        when {{ age }} < 65 then '45-64'
        else '65+'
    end
{%- endmacro %}

{#- Size class by tickets in the year: S < 10,000, M 10,000-100,000, L > 100,000. -#}
{% macro size_class(tickets) -%}
    case
        when {{ tickets }} < 10000 then 'S'
        when {{ tickets }} <= 100000 then 'M'
        else 'L'
    end
{%- endmacro %}

{#- Visits (distinct events attended) in the year: 1, 2, 3-5, 6+. -#}
{% macro frequency_band(visits) -%}
    case
        when {{ visits }} = 1 then '1'
        when {{ visits }} = 2 then '2'
        when {{ visits }} <= 5 then '3-5'
        else '6+'
    end
{%- endmacro %}

{#- Sector-wide intensity: light 1, medium 2-4, intensive 5+ visits in the sector in the year. -#}
{% macro intensity(visits) -%}
    case
        when {{ visits }} <= 1 then 'light'
        when {{ visits }} <= 4 then 'medium'
        else 'intensive'
    end
{%- endmacro %}

{#- Breadth: disciplines visited in the sector in the year, 1, 2 or 3+. -#}
{% macro breadth(n_disciplines) -%}
    case
        when {{ n_disciplines }} <= 1 then '1'
        when {{ n_disciplines }} = 2 then '2'
        else '3+'
    end
{%- endmacro %}

{#- A fixed list of labels as a relation (label, sort_order): portable, no VALUES clause. -#}
{% macro label_table(column, labels) -%}
    {%- for label in labels %}
    select '{{ label }}' as {{ column }}, {{ loop.index }} as sort_order
    {%- if not loop.last %} union all{% endif %}
    {%- endfor %}
{%- endmacro %}

{#- The metrics of the benchmark (metrics.md, product 1) in published order; additive metrics are
    sums over tickets or persons, whose peer mean (a total divided by the group size) falls under
    the dominance rule. -#}
{% macro benchmark_metrics() -%}
    {{ return([
        {'name': 'tickets', 'additive': true},
        {'name': 'revenue', 'additive': true},
        {'name': 'avg_price', 'additive': false},
        {'name': 'occupancy', 'additive': false},
        {'name': 'share_online', 'additive': false},
        {'name': 'share_discounted', 'additive': false},
        {'name': 'lead_time_days_median', 'additive': false},
        {'name': 'share_identified', 'additive': false},
        {'name': 'n_persons', 'additive': true},
        {'name': 'tickets_per_person', 'additive': false},
        {'name': 'share_new', 'additive': false},
        {'name': 'retention', 'additive': false},
        {'name': 'share_young', 'additive': false},
        {'name': 'share_local', 'additive': false},
    ]) }}
{%- endmacro %}
