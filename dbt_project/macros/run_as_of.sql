{#-
    The as-of instant of the run being built, as a SQL timestamp literal.

    History must follow the runs' as-of instants, not the wall clock (SPEC §2, §3.4), and
    the as-of must not travel through --vars (changing vars forces a full re-parse). The
    Python side writes exactly one row into learnops.run_context before every build; this
    macro reads it when the node executes and fails the node unless there is exactly one.

    Rendering a literal (rather than a sub-select) keeps the compiled snapshot SQL readable
    and lets the check above name the problem instead of silently stamping null.
-#}
{% macro run_as_of() %}
    {%- if not execute -%}
        {#- Parsing: no database access; any timestamp literal will do. -#}
        {{ return("cast('1970-01-01 00:00:00' as timestamp)") }}
    {%- endif -%}
    {#- learnops.run_context is the source `learnops.run_context` (see _sources.yml). -#}
    {%- set query -%}
        select count(*) as row_count, strftime(max(as_of), '%Y-%m-%d %H:%M:%S.%f') as as_of_text
        from learnops.run_context
    {%- endset -%}
    {%- set row = run_query(query).rows[0] -%}
    {%- if row[0] != 1 -%}
        {{ exceptions.raise_compiler_error(
            "learnops.run_context must hold exactly one row (the run being built), found "
            ~ row[0]) }}
    {%- endif -%}
    {{ return("cast('" ~ row[1] ~ "' as timestamp)") }}
{% endmacro %}


{#-
    dbt stamps snapshot rows (dbt_valid_from, dbt_valid_to, dbt_updated_at and the scd id)
    with snapshot_get_time(). With the `check` strategy that is the wall clock; we make it
    the run's as-of, so a change is dated by the run that applied it. dbt dispatches
    snapshot_get_time to the root project's duckdb__ implementation before the adapter's.
-#}
{% macro duckdb__snapshot_get_time() -%}
    {{ run_as_of() }}
{%- endmacro %}
