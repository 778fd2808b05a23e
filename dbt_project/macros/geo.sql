{#- Great-circle distance in km between two centroids (haversine, mean earth radius 6,371 km).
    Portable: radians, sin, cos, asin, sqrt and power exist in DuckDB, Spark and Trino. -#}
{% macro haversine_km(lat1, lon1, lat2, lon2) -%}
    (2 * 6371.0 * asin(sqrt(
        power(sin(radians({{ lat2 }} - {{ lat1 }}) / 2), 2)
        + cos(radians({{ lat1 }})) * cos(radians({{ lat2 }}))
        * power(sin(radians({{ lon2 }} - {{ lon1 }}) / 2), 2)
    )))
{%- endmacro %}

{#- Distance band from the institution: 0-10, 10-25, 25-50, 50+ km ("within 10 km" includes 10). -#}
{% macro distance_band(km) -%}
    case
        when {{ km }} is null then null
        when {{ km }} <= 10 then '0-10'
        when {{ km }} <= 25 then '10-25'
        when {{ km }} <= 50 then '25-50'
        else '50+'
    end
{%- endmacro %}
