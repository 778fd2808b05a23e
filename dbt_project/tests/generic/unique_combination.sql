{% test unique_combination(model, columns) %}
{#- Every combination of `columns` at most once (macros/repeated_keys.sql: exact, grouping by
    the key's 64-bit hash first). -#}
{{ repeated_keys(model, columns) }}
{% endtest %}
