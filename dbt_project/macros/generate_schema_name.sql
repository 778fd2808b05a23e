{#- Models land in the schema named by their folder (staging, intermediate, marts, published),
    not in "<target schema>_<name>": the release exports exactly the schema "published". -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
