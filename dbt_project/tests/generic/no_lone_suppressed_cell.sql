{#- In a set of cells that add up to a published total (the rows sharing set_columns; narrow the
    rows with the test's `where` config), a withheld cell (NULL) never stands alone beside
    published non-zero cells: the total minus the published cells would give it away
    (metrics.md, secondary suppression). One withheld cell among zeros is allowed, since that
    cell then is the whole total, itself below k and so withheld wherever it is published (the
    k_anonymity test on that table). -#}
{% test no_lone_suppressed_cell(model, column_name, set_columns) %}
with cells as (
    select * from {{ model }}
),

sets as (
    select
        {{ set_columns | join(', ') }},
        sum(case when {{ column_name }} is null then 1 else 0 end) as n_withheld,
        sum(case when {{ column_name }} > 0 then 1 else 0 end) as n_published_non_zero
    from cells
    group by {{ set_columns | join(', ') }}
)

select *
from sets
where n_withheld = 1
  and n_published_non_zero > 0
{% endtest %}
