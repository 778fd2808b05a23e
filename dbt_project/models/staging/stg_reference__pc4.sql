-- PC4 reference in CBS's column names, renamed. The population by age band is optional in the
-- file (the pipeline requires only aantal_inwoners): a column that is absent becomes NULL, and
-- CBS's negative codes for secret or missing values (-99997 and the like) become NULL.
{%- set age_columns = {
    'aantal_inwoners_0_tot_15_jaar': 'population_0_14',
    'aantal_inwoners_15_tot_25_jaar': 'population_15_24',
    'aantal_inwoners_25_tot_45_jaar': 'population_25_44',
    'aantal_inwoners_45_tot_65_jaar': 'population_45_64',
    'aantal_inwoners_65_jaar_en_ouder': 'population_65_plus',
} -%}
{%- set present = [] -%}
{%- if execute -%}
    {%- for column in adapter.get_columns_in_relation(source('reference', 'pc4')) -%}
        {%- do present.append(column.name | lower) -%}
    {%- endfor -%}
{%- endif %}

with source as (
    select * from {{ source('reference', 'pc4') }}
),

renamed as (
    select
        pc4,
        gemeente_code,
        gemeente_naam,
        provincie,
        cast(lat as double) as lat,
        cast(lon as double) as lon,
        case when aantal_inwoners >= 0 then cast(aantal_inwoners as bigint) end as population
        {%- for cbs_name, name in age_columns.items() %},
        {% if cbs_name in present -%}
        case when {{ cbs_name }} >= 0 then cast({{ cbs_name }} as bigint) end
        {%- else -%}
        cast(null as bigint)
        {%- endif %} as {{ name }}
        {%- endfor %}
    from source
)

select * from renamed
