{% test unique_combination(model, columns) %}
{#- Exact, in two steps: the 64-bit hashes of the key that repeat, then only the rows with such
    a hash grouped by the key itself. A key twice always has its hash twice, so nothing is
    missed; a hash collision only sends its rows to the exact grouping. Grouping 10M tickets by
    a 64-bit number, not by (institution_code, ticket_id) text: 2.2-2.6 -> 1.6 CPU s
    (docs/performance.md, twenty-fifth round). -#}
{%- set key = columns | join(', ') %}
with repeated_hashes as (
    select hash({{ key }}) as key_hash
    from {{ model }}
    group by key_hash
    having count(*) > 1
)

select {{ key }}, count(*) as n
from {{ model }}
where hash({{ key }}) in (select key_hash from repeated_hashes)
group by {{ key }}
having count(*) > 1
{% endtest %}
