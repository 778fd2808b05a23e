{#- A row flagged suppressed must withhold its person count or a person-based value, and a
    row with a withheld person count must be flagged. -#}
{% test suppression_consistent(model, column_name) %}
select {{ column_name }}
from {{ model }}
where ({{ column_name }} is null and not suppressed)
{% endtest %}
