{{ config(materialized='table') }}
{#- refs used only inside the trigger branches below, declared for dbt's DAG: -#}
-- depends_on: {{ ref('fct_audience_membership_event') }}
-- depends_on: {{ ref('fct_program_course_set_user') }}
-- depends_on: {{ ref('fct_certification_user') }}

{#-
    Every notification event this run sees (docs/notifications.md, "Events"): one row per
    (notification, learner, object, anchor, cycle) whose trigger instant is at or before the
    as-of and whose condition holds now. The same event is seen again by later runs; the
    outbox keeps the first message made from it (its dedupe key), so this model never needs
    to know what was sent before.

    Event triggers are anchored on the event's instant: the as-of of the run that observed an
    audience join or leave or an unassignment, the assignment instant, the completion
    instant, the instant an exception was raised. Timed triggers are anchored on the date
    they are relative to (due date, completion, window opening, expiry) and fire at anchor ±
    offset, calendar arithmetic. A later due date or expiry is a new anchor.

    The cycle of a certification event is the number of certifications so far (stable for
    one expiry: the current cycle number moves on when the window opens, and the expiry
    reminder must not come again with it).

    Only active learners have events: suspended and deleted users get nothing, and their
    managers no copies. A program event needs an active assignment (not future, not an open
    or dismissed exception); exception_raised is the exception itself, for the admins.

    A trigger no enabled notification uses is not derived at all (the course-set view alone
    is 32M rows at 1M users): the list is read from the rule tables when the model runs.
-#}

{%- set used = [] -%}
{%- if execute -%}
    {%- set rows = run_query(
        "select distinct trigger from " ~ ref('stg_rules__notifications') ~ " where is_enabled"
    ).rows -%}
    {%- for row in rows -%}{%- do used.append(row[0]) -%}{%- endfor -%}
{%- endif -%}
{%- set program_triggers = ['program_assigned', 'program_due', 'program_overdue',
    'program_completed', 'program_followup', 'exception_raised'] -%}
{%- set course_set_triggers = ['courseset_due', 'courseset_overdue', 'courseset_completed'] -%}
{%- set certification_triggers = ['certification_window_open', 'certification_expiring',
    'certification_expired'] -%}

{%- set offset = 'notifications.offset_months', 'notifications.offset_seconds' %}

with

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

notifications as (
    select * from {{ ref('stg_rules__notifications') }}
    where is_enabled
),

scopes as (
    select * from {{ ref('stg_rules__notification_scopes') }}
),

active_learners as (
    select user_id from {{ ref('dim_user') }}
    where status = 'active'
),

programs as (
    select program_id, name, kind from {{ ref('stg_rules__programs') }}
),

program_users as (
    select program_users.*
    from {{ ref('fct_program_user') }} as program_users
    semi join active_learners using (user_id)
),

{#- an assignment that counts: mail goes out, due dates apply (read by every program
    branch: computed once) -#}
live_program_users as materialized (
    select * from program_users
    where status not in ('future', 'exception', 'dismissed')
),

{#- fct_program_course_set_user is a view over compact progress rows (32M at 1M users):
    read once, only the rows a course-set trigger can use -#}
course_sets as materialized (
    {%- if used | select('in', course_set_triggers) | list %}
    select
        sets.program_id, sets.set_id, sets.user_id, sets.status, sets.completed_at,
        sets.due_at, sets.is_current_group
    from {{ ref('fct_program_course_set_user') }} as sets
    semi join live_program_users using (program_id, user_id)
    where sets.status = 'complete' or (sets.is_current_group and sets.due_at is not null)
    {%- else %}
    select
        null::varchar as program_id, null::varchar as set_id, null::varchar as user_id,
        null::varchar as status, null::timestamp as completed_at, null::timestamp as due_at,
        null::boolean as is_current_group
    where false
    {%- endif %}
),

previous_program_users as (
    select * from {{ ref('stg_learnops__previous_program_users') }}
    where status not in ('future', 'exception', 'dismissed')
),

{#- Each branch: notification_id, event_type, user_id, object_kind, object_id, scope_id (what
    a scope lists), anchor_at, cycle, trigger_at, then the values templates show. -#}
candidates as (
    select
        null::varchar as notification_id, null::varchar as event_type,
        null::varchar as user_id, null::varchar as object_kind, null::varchar as object_id,
        null::varchar as scope_id, null::timestamp as anchor_at, null::integer as cycle,
        null::timestamp as trigger_at, null::timestamp as due_at,
        null::timestamp as completed_at, null::timestamp as window_opens_at,
        null::timestamp as expires_at, null::varchar as exception_type,
        null::varchar as course_set_id
    where false

    {%- for trigger in ['audience_joined', 'audience_left'] if trigger in used %}
    union all
    select
        notifications.notification_id, notifications.trigger, events.user_id, 'audience',
        events.audience_id, events.audience_id, events.as_of, 0, events.as_of,
        null, null, null, null, null, null
    from {{ ref('fct_audience_membership_event') }} as events
    inner join run_context on events.run_id = run_context.run_id
    inner join notifications on notifications.trigger = '{{ trigger }}'
    semi join active_learners using (user_id)
    where events.event = '{{ trigger.removeprefix("audience_") }}'
    {%- endfor %}

    {%- if 'program_assigned' in used %}
    union all
    {# entering a live assignment: new, or out of future / an exception #}
    select
        notifications.notification_id, notifications.trigger, live.user_id, live.kind,
        live.program_id, live.program_id, live.assigned_at, 0, live.assigned_at,
        live.due_at, null, null, null, null, null
    from live_program_users as live
    inner join notifications on notifications.trigger = 'program_assigned'
    anti join previous_program_users as previous using (program_id, user_id)
    {%- endif %}

    {%- if 'program_unassigned' in used %}
    union all
    select
        notifications.notification_id, notifications.trigger, previous.user_id,
        programs.kind, previous.program_id, previous.program_id, run_context.as_of, 0,
        run_context.as_of, previous.due_at, previous.completed_at, null, null, null, null
    from previous_program_users as previous
    inner join programs using (program_id)
    cross join run_context
    inner join notifications on notifications.trigger = 'program_unassigned'
    semi join active_learners using (user_id)
    anti join program_users as current_users using (program_id, user_id)
    {%- endif %}

    {%- if 'program_due' in used %}
    union all
    select
        notifications.notification_id, notifications.trigger, live.user_id, live.kind,
        live.program_id, live.program_id, live.due_at, 0, {{ shift_instant('live.due_at', *offset, sign=-1) }},
        live.due_at, null, null, null, null, null
    from live_program_users as live
    cross join run_context
    inner join notifications on notifications.trigger = 'program_due'
    where live.status <> 'complete' and live.due_at is not null
        and run_context.as_of <= live.due_at
        and {{ shift_instant('live.due_at', *offset, sign=-1) }} <= run_context.as_of
    {%- endif %}

    {%- if 'program_overdue' in used %}
    union all
    select
        notifications.notification_id, notifications.trigger, live.user_id, live.kind,
        live.program_id, live.program_id, live.due_at, 0, {{ shift_instant('live.due_at', *offset, sign=1) }},
        live.due_at, null, null, null, null, null
    from live_program_users as live
    cross join run_context
    inner join notifications on notifications.trigger = 'program_overdue'
    where live.status <> 'complete' and live.due_at is not null
        and {{ shift_instant('live.due_at', *offset, sign=1) }} <= run_context.as_of
    {%- endif %}

    {%- for trigger in ['program_completed', 'program_followup'] if trigger in used %}
    union all
    select
        notifications.notification_id, notifications.trigger, live.user_id, live.kind,
        live.program_id, live.program_id, live.completed_at, 0,
        {{ shift_instant('live.completed_at', *offset, sign=1) }}, live.due_at, live.completed_at,
        null, null, null, null
    from live_program_users as live
    cross join run_context
    inner join notifications on notifications.trigger = '{{ trigger }}'
    where live.status = 'complete'
        and {{ shift_instant('live.completed_at', *offset, sign=1) }} <= run_context.as_of
    {%- endfor %}

    {%- if 'exception_raised' in used %}
    union all
    select
        notifications.notification_id, notifications.trigger, program_users.user_id,
        program_users.kind, program_users.program_id, program_users.program_id,
        program_users.exception_raised_at, 0, program_users.exception_raised_at,
        program_users.due_at, null, null, null, program_users.exception_type, null
    from program_users
    inner join notifications on notifications.trigger = 'exception_raised'
    where program_users.status = 'exception' and program_users.exception_raised_at is not null
    {%- endif %}

    {%- for trigger in course_set_triggers if trigger in used %}
    union all
    select
        notifications.notification_id, notifications.trigger, sets.user_id, 'course_set',
        sets.program_id || '/' || sets.set_id, sets.program_id,
        {%- if trigger == 'courseset_completed' %}
        sets.completed_at, 0, sets.completed_at,
        {%- elif trigger == 'courseset_due' %}
        sets.due_at, 0, {{ shift_instant('sets.due_at', *offset, sign=-1) }},
        {%- else %}
        sets.due_at, 0, {{ shift_instant('sets.due_at', *offset, sign=1) }},
        {%- endif %}
        sets.due_at, sets.completed_at, null, null, null, sets.set_id
    from course_sets as sets
    cross join run_context
    inner join notifications on notifications.trigger = '{{ trigger }}'
    {%- if trigger == 'courseset_completed' %}
    where sets.status = 'complete' and sets.completed_at <= run_context.as_of
    {%- elif trigger == 'courseset_due' %}
    where sets.status <> 'complete' and sets.is_current_group and sets.due_at is not null
        and run_context.as_of <= sets.due_at
        and {{ shift_instant('sets.due_at', *offset, sign=-1) }} <= run_context.as_of
    {%- else %}
    where sets.status <> 'complete' and sets.is_current_group and sets.due_at is not null
        and {{ shift_instant('sets.due_at', *offset, sign=1) }} <= run_context.as_of
    {%- endif %}
    {%- endfor %}

    {%- for trigger in certification_triggers if trigger in used %}
    union all
    select
        notifications.notification_id, notifications.trigger, certs.user_id, 'certification',
        certs.certification_id, certs.certification_id,
        {%- if trigger == 'certification_window_open' %}
        certs.window_opens_at, coalesce(certs.certification_count, 0),
        {{ shift_instant('certs.window_opens_at', *offset, sign=1) }},
        {%- elif trigger == 'certification_expiring' %}
        certs.expires_at, coalesce(certs.certification_count, 0), {{ shift_instant('certs.expires_at', *offset, sign=-1) }},
        {%- else %}
        certs.expires_at, coalesce(certs.certification_count, 0), {{ shift_instant('certs.expires_at', *offset, sign=1) }},
        {%- endif %}
        null, certs.certified_at, certs.window_opens_at, certs.expires_at, null, null
    from {{ ref('fct_certification_user') }} as certs
    semi join live_program_users as live
        on live.program_id = certs.certification_id and live.user_id = certs.user_id
    cross join run_context
    inner join notifications on notifications.trigger = '{{ trigger }}'
    {%- if trigger == 'certification_window_open' %}
    where certs.state = 'window_open' and certs.window_opens_at is not null
        and {{ shift_instant('certs.window_opens_at', *offset, sign=1) }} <= run_context.as_of
    {%- elif trigger == 'certification_expiring' %}
    where certs.state in ('certified', 'window_open') and certs.expires_at is not null
        and run_context.as_of <= certs.expires_at
        and {{ shift_instant('certs.expires_at', *offset, sign=-1) }} <= run_context.as_of
    {%- else %}
    where certs.state = 'expired' and certs.expires_at is not null
        and {{ shift_instant('certs.expires_at', *offset, sign=1) }} <= run_context.as_of
    {%- endif %}
    {%- endfor %}
),

in_scope as (
    select candidates.*
    from candidates
    inner join notifications using (notification_id)
    where notifications.scope_kind = 'all'
        or exists (
            select 1 from scopes
            where scopes.notification_id = candidates.notification_id
                and scopes.object_id = candidates.scope_id
        )
),

final as (
    select
        in_scope.notification_id,
        in_scope.event_type,
        in_scope.user_id,
        in_scope.object_kind,
        in_scope.object_id,
        in_scope.anchor_at,
        in_scope.cycle,
        in_scope.trigger_at,
        concat_ws('|', in_scope.notification_id, in_scope.user_id, in_scope.object_id,
            strftime(in_scope.anchor_at, '%Y-%m-%dT%H:%M:%SZ'), in_scope.cycle::varchar)
            as dedupe_key,
        coalesce(audiences.name, programs.name, in_scope.scope_id) as object_name,
        in_scope.course_set_id,
        in_scope.due_at,
        in_scope.completed_at,
        in_scope.window_opens_at,
        in_scope.expires_at,
        in_scope.exception_type
    from in_scope
    left join {{ ref('dim_audience') }} as audiences
        on in_scope.object_kind = 'audience' and audiences.audience_id = in_scope.scope_id
    left join programs
        on in_scope.object_kind <> 'audience' and programs.program_id = in_scope.scope_id
)

select * from final
