{#- Disclosure control of metrics.md, used inside the models (not only in tests). -#}

{% macro k_min() -%}
    {%- set k = var('k', env_var('PUBLIEKSDATA_K', '10')) | int -%}
    {%- if k < 5 -%}
        {{ exceptions.raise_compiler_error("k=" ~ k ~ " is refused: the disclosure rules need k >= 5") }}
    {%- endif -%}
    {{- return(k) -}}
{%- endmacro %}

{#- A count of persons: published when 0 or >= k, else NULL. -#}
{% macro k_count(n) -%}
    case when {{ n }} = 0 or {{ n }} >= {{ k_min() }} then {{ n }} end
{%- endmacro %}

{#- A share of persons: the denominator needs k, the numerator 0 or >= k. -#}
{% macro k_share(numerator, denominator) -%}
    case
        when {{ denominator }} >= {{ k_min() }}
         and ({{ numerator }} = 0 or {{ numerator }} >= {{ k_min() }})
        then cast({{ numerator }} as double) / {{ denominator }}
    end
{%- endmacro %}

{#- A mean or ratio over persons (e.g. tickets per person): the persons need k. -#}
{% macro k_mean(total, n_persons) -%}
    case when {{ n_persons }} >= {{ k_min() }} then cast({{ total }} as double) / {{ n_persons }} end
{%- endmacro %}

{#- A plain ratio without persons behind it (tickets, revenue). -#}
{% macro safe_ratio(numerator, denominator) -%}
    case when {{ denominator }} > 0 then cast({{ numerator }} as double) / {{ denominator }} end
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
