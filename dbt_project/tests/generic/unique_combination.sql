{#-
    The combination of `columns` is unique (nulls compare equal, as in a group by).
    dbt_utils.unique_combination_of_columns, written here because the hub is unreachable.
-#}
{% test unique_combination(model, columns) %}

with

duplicates as (
    select {{ columns | join(', ') }}, count(*) as row_count
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
)

select * from duplicates

{% endtest %}
