{#-
    `instant` moved by a stored period (calendar months, then seconds; docs/programs.md,
    "Periods"), forwards (sign 1) or backwards (sign -1). A null period moves nothing.
    Month arithmetic is DuckDB's: clamped to the month's end (31 Jan + 1 month = 28/29 Feb).
-#}
{% macro shift_instant(instant, months, seconds, sign=1) -%}
    ({{ instant }} + to_months({{ sign }} * coalesce({{ months }}, 0)::integer)
        + to_seconds({{ sign }} * coalesce({{ seconds }}, 0)::bigint))
{%- endmacro %}
