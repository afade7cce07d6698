{#-
    Every row satisfies `expression` (rows where it is false or null fail).
    Used for invariants: depth >= 1, the last path element is the item itself, ...
-#}
{% test expression_is_true(model, expression) %}

select *
from {{ model }}
where not coalesce(({{ expression }}), false)

{% endtest %}
