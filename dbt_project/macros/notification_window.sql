{#-
    The window of trigger instants this run derives notification events for
    (docs/notifications.md, "Incremental derivation"), as SQL timestamp literals:

      as_of   the run's as-of;
      since   the earliest trigger instant derived (inclusive): just after the earlier of
              the last published run's as-of and as-of - max_lateness, never after the
              as-of. None on the go-live baseline (the first run, or --baseline) and
              whenever no run was published before: then every current event is derived,
              as a full rebuild.

    Why the lower bound is not simply the last as-of: an event can become true only now
    with a trigger instant in the past (a completion imported late, a learner newly
    assigned to a program whose reminder instant has passed). Any such event that could
    still be sent less than max_lateness late has a trigger instant after as-of -
    max_lateness, so it is inside the window; one older than both bounds would only be
    recorded `skipped_late`, and is not derived at all.

    Why just after, not at: instants equal to the last as-of are where events cluster (every
    assignment, exception and optional course set a run makes is anchored at its as-of),
    and that run derived them. With weekly runs and a 7-day max_lateness both bounds are
    the last as-of; an inclusive bound re-derived every such event of the last run, every
    run (4.6M rows at 1M users the week after the go-live), to drop them all as seen.
    What is given up: an event that becomes true only now, exactly max_lateness after its
    trigger instant, is not made (the full derivation made it, exactly max_lateness late).

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
                    least(
                        run_context.previous_as_of,
                        run_context.as_of
                            - to_months(coalesce(settings.max_lateness_months, 0)::integer)
                            - to_seconds(coalesce(settings.max_lateness_seconds, 0)::bigint)
                    ) + interval 1 microsecond,
                    {#- a re-run at the same as-of with no lateness still sees its instant -#}
                    run_context.as_of
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


{#- `expr >= since` (in the window), or with before=true `expr < since` (a re-check: the
    window derives the rest); true when the run derives everything -#}
{% macro notification_since(expr, window, before=false) -%}
    {%- if window.since is none -%} true
    {%- else -%} {{ expr }} {{ '<' if before else '>=' }} {{ window.since }}
    {%- endif -%}
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
