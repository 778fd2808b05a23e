{#- Fails for every published row whose person count is between 1 and k-1 (metrics.md). -#}
{% test k_anonymity(model, column_name, k=none) %}
select {{ column_name }} as n_persons
from {{ model }}
where {{ column_name }} > 0
  and {{ column_name }} < {{ k if k is not none else k_min() }}
{% endtest %}
