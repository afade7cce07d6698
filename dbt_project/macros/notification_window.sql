{#-
    The window of trigger instants this run derives notification events for
    (docs/notifications.md, "Incremental derivation"), as SQL timestamp literals:

      as_of   the run's as-of;
      since   the earliest trigger instant derived, inclusive: the earlier of the instant
              just after the last published run's as-of and as-of - max_lateness. None on
              the go-live baseline (the first run, or --baseline) and whenever no run was
              published before: then every current event is derived, as a full rebuild.

    Why the lower bound is not simply the last as-of: an event can become true only now
    with a trigger instant in the past (a completion imported late, a learner newly
    assigned to a program whose reminder instant has passed). Any such event that could
    still be sent (as-of <= trigger + max_lateness) has a trigger instant >= as-of -
    max_lateness, so it is inside the window; one older than both bounds would only be
    recorded `skipped_late`, and is not derived at all.

    Read when the node executes, like run_as_of(): literals let DuckDB push the bounds
    into the table scans.
-#}
{% macro notification_window() %}
    {%- if not execute -%}
        {{ return({'as_of': "cast('1970-01-01 00:00:00' as timestamp)", 'since': none}) }}
    {%- endif -%}
    {%- set query -%}
        select
            strftime(run_context.as_of, '%Y-%m-%d %H:%M:%S.%f') as as_of_text,
            case when not run_context.is_baseline and run_context.previous_as_of is not null
                then strftime(least(
                    run_context.previous_as_of + interval 1 microsecond,
                    run_context.as_of
                        - to_months(coalesce(settings.max_lateness_months, 0)::integer)
                        - to_seconds(coalesce(settings.max_lateness_seconds, 0)::bigint)
                ), '%Y-%m-%d %H:%M:%S.%f')
            end as since_text
        from {{ ref('stg_learnops__run_context') }} as run_context
        left join {{ ref('stg_rules__notification_settings') }} as settings on true
    {%- endset -%}
    {%- set rows = run_query(query).rows -%}
    {%- if rows | length != 1 -%}
        {{ exceptions.raise_compiler_error(
            "learnops.run_context must hold exactly one row (the run being built), found "
            ~ rows | length) }}
    {%- endif -%}
    {%- set since = rows[0][1] -%}
    {{ return({
        'as_of': "cast('" ~ rows[0][0] ~ "' as timestamp)",
        'since': none if since is none else "cast('" ~ since ~ "' as timestamp)",
    }) }}
{% endmacro %}


{#- `expr >= since`, or true when the run derives everything -#}
{% macro notification_since(expr, window) -%}
    {%- if window.since is none -%} true {%- else -%} {{ expr }} >= {{ window.since }} {%- endif -%}
{%- endmacro %}


{#-
    A 127-bit digest of a dedupe key (md5, stable across DuckDB versions, unlike hash()):
    the outbox keeps it beside the key so a run can tell the events it has seen by
    scanning 16 bytes a row rather than the key's text.
-#}
{% macro notification_key_hash(expr) -%}
    (md5_number({{ expr }}) >> 1)::hugeint
{%- endmacro %}


{#- a re-check branch keeps the events of the unsent keys only (unsent_keys: notification,
    learner, object of the last outbox's unsent timed messages) -#}
{% macro notification_recheck_join(user_id, object_id) -%}
    semi join unsent_keys as unsent
        on unsent.notification_id = notifications.notification_id
        and unsent.user_id = {{ user_id }} and unsent.object_id = {{ object_id }}
{%- endmacro %}
