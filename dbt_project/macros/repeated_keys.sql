{#- The keys that occur more than once in `relation` (a relation or a CTE's name), with how
    often: `select <columns>, count(*) as n`. Exact, in two steps: the 64-bit hashes of the key
    that repeat, then only the rows with such a hash grouped by the key itself. A key twice
    always has its hash twice, so nothing is missed; a hash collision only sends its rows to the
    exact grouping. Grouping 10M tickets by a 64-bit number, not by (institution_code,
    ticket_id) text: 2.2-2.6 -> 1.6 CPU s (docs/performance.md, twenty-fifth round). Used by the
    generic test unique_combination and by int_ticket_key_repeats. -#}
{% macro repeated_keys(relation, columns) -%}
{%- set key = columns | join(', ') -%}
select {{ key }}, count(*) as n
from {{ relation }}
where hash({{ key }}) in (
    select hash({{ key }}) as key_hash
    from {{ relation }}
    group by key_hash
    having count(*) > 1
)
group by {{ key }}
having count(*) > 1
{%- endmacro %}
