{{ config(materialized='table') }}
{#- refs used only inside the trigger branches below, declared for dbt's DAG: -#}
-- depends_on: {{ ref('fct_audience_membership_event') }}
-- depends_on: {{ ref('fct_certification_user') }}
-- depends_on: {{ ref('stg_rules__notification_settings') }}

{#-
    The notification events this run derives (docs/notifications.md, "Events" and
    "Incremental derivation"): one row per (notification, learner, object, anchor, cycle)
    whose condition holds now and whose trigger instant is at or before the as-of and
    inside this run's window (macros/notification_window.sql):

      is_recheck = false  the window: trigger instant in [since, as-of]. Everything before
                          `since` was derived by an earlier run (or is too late to send);
                          the go-live baseline has no `since` and derives every event.
      is_recheck = true   an event of an unsent (pending, held, deferred) timed message of
                          the last outbox with its trigger instant before the window (the
                          window has the others) that still holds: the outbox cancels the
                          unsent timed messages that are not here.

    The outbox's dedupe key remains the authority on what was made before: an event in the
    window may be one an earlier run saw (windows overlap by up to max_lateness, and an
    offset edit moves trigger instants), and int_notification_messages drops those.

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
    The as-of and the window's bound are literals, so DuckDB filters the marts as it scans
    them and every join after that sees only the window's rows.
-#}

{%- set used = [] -%}
{%- if execute -%}
    {%- set rows = run_query(
        "select distinct trigger from " ~ ref('stg_rules__notifications') ~ " where is_enabled"
    ).rows -%}
    {%- for row in rows -%}{%- do used.append(row[0]) -%}{%- endfor -%}
{%- endif -%}
{%- set course_set_triggers = ['courseset_due', 'courseset_overdue', 'courseset_completed'] -%}
{%- set certification_triggers = ['certification_window_open', 'certification_expiring',
    'certification_expired'] -%}
{%- set timed = ['program_due', 'program_overdue', 'courseset_due', 'courseset_overdue',
    'program_followup', 'certification_window_open', 'certification_expiring',
    'certification_expired'] -%}

{%- set window = notification_window() -%}
{%- set as_of = window.as_of -%}
{#- the outbox as the last run left it (this model runs before the outbox is rebuilt) -#}
{%- set outbox = adapter.get_relation(
    database=this.database, schema='main', identifier='notification_outbox') if execute -%}
{#- re-checks are needed only when the window leaves events out -#}
{%- set modes = ['window'] + (['recheck'] if outbox is not none and window.since is not none else []) -%}

{%- set offset = 'notifications.offset_months', 'notifications.offset_seconds' %}
{#- the statuses in which an assignment does not count (no mail, no due date) -#}
{%- set held = ["'future'", "'exception'", "'dismissed'"] %}

with

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

{#- the thin CTEs read by several branches are not materialised (DuckDB would, for a CTE
    read more than once): each read is a scan with its own filters pushed into it -#}
notifications as not materialized (
    select * from {{ ref('stg_rules__notifications') }}
    where is_enabled
),

scopes as (
    select * from {{ ref('stg_rules__notification_scopes') }}
),

active_learners as not materialized (
    select user_id from {{ ref('dim_user') }}
    where status = 'active'
),

programs as (
    select program_id, name, kind from {{ ref('stg_rules__programs') }}
),

program_users as not materialized (
    select * from {{ ref('fct_program_user') }}
),

{#- an assignment that counts: mail goes out, due dates apply -#}
live_program_users as not materialized (
    select * from program_users
    where status not in ({{ held | join(', ') }})
),

{#- every learner of this run and (is_assigned false) of the last run no longer assigned,
    with the status the last run published: assignments and unassignments without
    comparing the two runs again (int_program_assignments did, once) -#}
assignments as not materialized (
    select * from {{ ref('int_program_assignments') }}
),

{#- (notification, learner, object) of the unsent timed messages: their events are
    re-checked whatever their trigger instant -#}
unsent_keys as (
    {%- if 'recheck' in modes %}
    select distinct notification_id, user_id, object_id
    from {{ outbox }}
    where status in ('pending', 'held', 'deferred')
        and event_type in ('{{ timed | join("', '") }}')
    {%- else %}
    select null::varchar as notification_id, null::varchar as user_id,
        null::varchar as object_id
    where false
    {%- endif %}
),

{#- The course sets a trigger can be about, read from the two compact course-set tables
    (macros/course_set_progress.sql) with the definitions of fct_program_course_set_user
    (a set's due date: its group's opening plus the group's longest min_time), but not
    through that view: it derives every (learner, set) row, 32M at 1M users, where these
    need completions by their instant and the current group's unfinished sets with a due
    date. A templated learner's rows are its path template's with the learner's opening,
    so the template's rows are filtered first and only then copied to the learners.

    The view shows a certification learner's current path instead of the primary one: the
    primary path's rows carry is_primary_path, and live_candidates keeps those of a
    certification only for learners without certification cycles (not in
    fct_certification_user), on the window's rows only. -#}
{%- set compact_paths = [
    (true, ref('int_program_course_sets_evaluated')),
    (false, ref('int_program_certification_course_sets_evaluated')),
] %}
{%- set no_sets -%}
    select
        null::varchar as program_id, null::varchar as set_id, null::varchar as user_id,
        null::timestamp as completed_at, null::timestamp as due_at,
        null::boolean as is_primary_path
    where false
{%- endset %}
timed_groups as (
    select program_id, path, group_number, min_time.months, min_time.seconds
    from ({{ course_set_group_min_times(ref('stg_rules__program_course_sets')) }})
    where min_time.months > 0 or min_time.seconds > 0
),

completed_sets as materialized (
    {%- if 'courseset_completed' in used %}
    {%- for is_primary, compact in compact_paths %}
    {{ 'union all' if not loop.first }}
    -- learners with a counted completion: their own rows
    select
        sets.program_id, sets.set_id, sets.user_id, sets.set_completed_at as completed_at,
        case when sets.group_opens_at is not null and groups.program_id is not null
            then {{ add_period('sets.group_opens_at', 'groups.months', 'groups.seconds') }}
        end as due_at,
        {{ is_primary }} as is_primary_path
    from {{ compact }} as sets
    left join timed_groups as groups using (program_id, path, group_number)
    where sets.row_kind = 'learner' and sets.set_completed_at <= {{ as_of }}
        and {{ notification_since('sets.set_completed_at', window) }}

    union all
    -- everyone else: the template's sets complete at its opening (optional sets)
    select
        learners.program_id, templates.set_id, learners.user_id, learners.opened_at,
        case when templates.is_opened and templates.months is not null
            then {{ add_period('learners.opened_at', 'templates.months', 'templates.seconds') }}
        end,
        {{ is_primary }}
    from {{ compact }} as learners
    inner join (
        select
            sets.program_id, sets.path, sets.set_id, sets.group_opens_at is not null as is_opened,
            groups.months, groups.seconds
        from {{ compact }} as sets
        left join timed_groups as groups using (program_id, path, group_number)
        where sets.row_kind = 'template' and sets.set_completed_at is not null
    ) as templates using (program_id, path)
    where learners.row_kind = 'templated_learner' and learners.opened_at <= {{ as_of }}
        and {{ notification_since('learners.opened_at', window) }}
    {%- endfor %}
    {%- else %}
    {{ no_sets }}
    {%- endif %}
),

{#- whatever their date: the due date is known only once computed -#}
due_sets as materialized (
    {%- if 'courseset_due' in used or 'courseset_overdue' in used %}
    {%- for is_primary, compact in compact_paths %}
    {{ 'union all' if not loop.first }}
    select
        sets.program_id, sets.set_id, sets.user_id, null::timestamp as completed_at,
        {{ add_period('sets.group_opens_at', 'groups.months', 'groups.seconds') }} as due_at,
        {{ is_primary }} as is_primary_path
    from {{ compact }} as sets
    inner join timed_groups as groups using (program_id, path, group_number)
    where sets.row_kind = 'learner' and sets.group_number = sets.current_group_number
        and sets.set_completed_at is null and sets.group_opens_at is not null

    union all
    select
        learners.program_id, templates.set_id, learners.user_id, null::timestamp,
        {{ add_period('learners.opened_at', 'templates.months', 'templates.seconds') }},
        {{ is_primary }}
    from {{ compact }} as learners
    inner join (
        select sets.program_id, sets.path, sets.set_id, groups.months, groups.seconds
        from {{ compact }} as sets
        inner join timed_groups as groups using (program_id, path, group_number)
        where sets.row_kind = 'template' and sets.group_number = sets.current_group_number
            and sets.set_completed_at is null and sets.group_opens_at is not null
    ) as templates using (program_id, path)
    where learners.row_kind = 'templated_learner'
    {%- endfor %}
    {%- else %}
    {{ no_sets }}
    {%- endif %}
),

{#- Each branch: notification_id, event_type, user_id, object_kind, object_id, scope_id (what
    a scope lists), anchor_at, cycle, trigger_at, the values templates show, is_recheck.
    `window` branches keep trigger instants >= since; `recheck` branches (timed triggers
    only) keep the unsent keys instead. -#}
candidates as materialized (
    select
        null::varchar as notification_id, null::varchar as event_type,
        null::varchar as user_id, null::varchar as object_kind, null::varchar as object_id,
        null::varchar as scope_id, null::timestamp as anchor_at, null::integer as cycle,
        null::timestamp as trigger_at, null::timestamp as due_at,
        null::timestamp as completed_at, null::timestamp as window_opens_at,
        null::timestamp as expires_at, null::varchar as exception_type,
        null::varchar as course_set_id, null::boolean as is_recheck,
        null::boolean as needs_live, null::boolean as is_primary_path
    where false

    {%- for mode in modes %}
    {%- set recheck = mode == 'recheck' %}

    {%- if not recheck %}

    {%- for trigger in ['audience_joined', 'audience_left'] if trigger in used %}
    union all
    {# already incremental: the events this run recorded #}
    select
        notifications.notification_id, notifications.trigger, events.user_id, 'audience',
        events.audience_id, events.audience_id, events.as_of, 0, events.as_of,
        null, null, null, null, null, null, false, false, false
    from {{ ref('fct_audience_membership_event') }} as events
    inner join run_context on events.run_id = run_context.run_id
    inner join notifications on notifications.trigger = '{{ trigger }}'
    where events.event = '{{ trigger.removeprefix("audience_") }}'
    {%- endfor %}

    {%- if 'program_assigned' in used %}
    union all
    {# entering a live assignment: new, or out of future / an exception (live as in
       fct_program_user's status; the last run's status is on the row) #}
    select
        notifications.notification_id, notifications.trigger, assignments.user_id,
        assignments.kind, assignments.program_id, assignments.program_id,
        assignments.assigned_at, 0, assignments.assigned_at,
        assignments.due_at, null, null, null, null, null, false, false, false
    from assignments
    inner join notifications on notifications.trigger = 'program_assigned'
    where assignments.is_assigned
        and not (assignments.is_future or assignments.is_exception_open or assignments.is_dismissed)
        and coalesce(assignments.previous_status in ({{ held | join(', ') }}), true)
        and {{ notification_since('assignments.assigned_at', window) }}
    {%- endif %}

    {%- if 'program_unassigned' in used %}
    union all
    {# anchored at the as-of: a live learner of the last run no longer assigned #}
    select
        notifications.notification_id, notifications.trigger, assignments.user_id,
        programs.kind, assignments.program_id, assignments.program_id, {{ as_of }}, 0,
        {{ as_of }}, assignments.due_at, assignments.completed_at, null, null, null, null,
        false, false, false
    from assignments
    inner join programs using (program_id)
    inner join notifications on notifications.trigger = 'program_unassigned'
    where not assignments.is_assigned
        and assignments.previous_status not in ({{ held | join(', ') }})
    {%- endif %}

    {%- for trigger in ['program_completed'] if trigger in used %}
    union all
    select
        notifications.notification_id, notifications.trigger, live.user_id, live.kind,
        live.program_id, live.program_id, live.completed_at, 0,
        {{ shift_instant('live.completed_at', *offset, sign=1) }}, live.due_at, live.completed_at,
        null, null, null, null, false, false, false
    from live_program_users as live
    inner join notifications on notifications.trigger = '{{ trigger }}'
    where live.status = 'complete'
        and {{ shift_instant('live.completed_at', *offset, sign=1) }} <= {{ as_of }}
        and {{ notification_since(shift_instant('live.completed_at', *offset, sign=1), window) }}
    {%- endfor %}

    {%- if 'exception_raised' in used %}
    union all
    select
        notifications.notification_id, notifications.trigger, program_users.user_id,
        program_users.kind, program_users.program_id, program_users.program_id,
        program_users.exception_raised_at, 0, program_users.exception_raised_at,
        program_users.due_at, null, null, null, program_users.exception_type, null, false, false, false
    from program_users
    inner join notifications on notifications.trigger = 'exception_raised'
    where program_users.status = 'exception' and program_users.exception_raised_at is not null
        and {{ notification_since('program_users.exception_raised_at', window) }}
    {%- endif %}

    {%- if 'courseset_completed' in used %}
    union all
    select
        notifications.notification_id, notifications.trigger, sets.user_id, 'course_set',
        sets.program_id || '/' || sets.set_id, sets.program_id,
        sets.completed_at, 0, sets.completed_at,
        sets.due_at, sets.completed_at, null, null, null, sets.set_id, false, true, sets.is_primary_path
    from completed_sets as sets
    inner join notifications on notifications.trigger = 'courseset_completed'
    {%- endif %}

    {%- endif %}

    {#- timed triggers: both modes -#}

    {#- trigger: (instant, sign of the offset, condition, completed_at shown) -#}
    {%- set program_timed = {
        'program_due': ('live.due_at', -1,
            "live.status <> 'complete' and live.due_at is not null and " ~ as_of ~ " <= live.due_at",
            'null'),
        'program_overdue': ('live.due_at', 1,
            "live.status <> 'complete' and live.due_at is not null", 'null'),
        'program_followup': ('live.completed_at', 1, "live.status = 'complete'",
            'live.completed_at'),
    } %}
    {%- for trigger, spec in program_timed.items() if trigger in used %}
    {%- set instant, sign, condition, completed = spec %}
    {%- set trigger_at = shift_instant(instant, *offset, sign=sign) %}
    union all
    select
        notifications.notification_id, notifications.trigger, live.user_id, live.kind,
        live.program_id, live.program_id, {{ instant }}, 0, {{ trigger_at }},
        live.due_at, {{ completed }}, null, null, null, null, {{ recheck }}, false, false
    from live_program_users as live
    inner join notifications on notifications.trigger = '{{ trigger }}'
    {%- if recheck %}
    {{ notification_recheck_join('live.user_id', 'live.program_id') }}
    {%- endif %}
    where {{ condition }}
        and {{ trigger_at }} <= {{ as_of }}
        and {{ notification_since(trigger_at, window, before=recheck) }}
    {%- endfor %}

    {%- for trigger in ['courseset_due', 'courseset_overdue'] if trigger in used %}
    {%- set sign = -1 if trigger == 'courseset_due' else 1 %}
    union all
    select
        notifications.notification_id, notifications.trigger, sets.user_id, 'course_set',
        sets.program_id || '/' || sets.set_id, sets.program_id,
        sets.due_at, 0, {{ shift_instant('sets.due_at', *offset, sign=sign) }},
        sets.due_at, sets.completed_at, null, null, null, sets.set_id, {{ recheck }}, true, sets.is_primary_path
    from due_sets as sets
    inner join notifications on notifications.trigger = '{{ trigger }}'
    {%- if recheck %}
    {{ notification_recheck_join('sets.user_id', "sets.program_id || '/' || sets.set_id") }}
    {%- endif %}
    where true
        {%- if trigger == 'courseset_due' %}
        and {{ as_of }} <= sets.due_at
        {%- endif %}
        and {{ shift_instant('sets.due_at', *offset, sign=sign) }} <= {{ as_of }}
        and {{ notification_since(shift_instant('sets.due_at', *offset, sign=sign), window, before=recheck) }}
    {%- endfor %}

    {%- for trigger in certification_triggers if trigger in used %}
    {%- set instant = 'certs.window_opens_at' if trigger == 'certification_window_open'
        else 'certs.expires_at' %}
    {%- set sign = -1 if trigger == 'certification_expiring' else 1 %}
    union all
    select
        notifications.notification_id, notifications.trigger, certs.user_id, 'certification',
        certs.certification_id, certs.certification_id,
        {{ instant }}, coalesce(certs.certification_count, 0),
        {{ shift_instant(instant, *offset, sign=sign) }},
        null, certs.certified_at, certs.window_opens_at, certs.expires_at, null, null,
        {{ recheck }}, true, false
    from {{ ref('fct_certification_user') }} as certs
    inner join notifications on notifications.trigger = '{{ trigger }}'
    {%- if recheck %}
    {{ notification_recheck_join('certs.user_id', 'certs.certification_id') }}
    {%- endif %}
    where {{ instant }} is not null
        {%- if trigger == 'certification_window_open' %}
        and certs.state = 'window_open'
        {%- elif trigger == 'certification_expiring' %}
        and certs.state in ('certified', 'window_open') and {{ as_of }} <= certs.expires_at
        {%- else %}
        and certs.state = 'expired'
        {%- endif %}
        and {{ shift_instant(instant, *offset, sign=sign) }} <= {{ as_of }}
        and {{ notification_since(shift_instant(instant, *offset, sign=sign), window, before=recheck) }}
    {%- endfor %}

    {%- endfor %}
),

{#- only active learners, and for course-set and certification triggers a live assignment
    (program rows carry their own status), and for a certification's primary-path course
    sets a learner with no certification cycles (the path the status shows): checked on the
    window's rows only -#}
live_candidates as (
    select candidates.* exclude (needs_live, is_primary_path)
    from candidates
    semi join active_learners using (user_id)
    where not candidates.needs_live

    union all
    select candidates.* exclude (needs_live, is_primary_path)
    from candidates
    semi join active_learners using (user_id)
    semi join live_program_users as live
        on live.program_id = candidates.scope_id and live.user_id = candidates.user_id
    left join {{ ref('fct_certification_user') }} as certification_learners
        on
            candidates.is_primary_path
            and certification_learners.certification_id = candidates.scope_id
            and certification_learners.user_id = candidates.user_id
    where candidates.needs_live and certification_learners.user_id is null
),

in_scope as (
    select live_candidates.*
    from live_candidates
    inner join notifications using (notification_id)
    where notifications.scope_kind = 'all'
        or exists (
            select 1 from scopes
            where scopes.notification_id = live_candidates.notification_id
                and scopes.object_id = live_candidates.scope_id
        )
),

keyed as (
    select
        *,
        concat_ws('|', notification_id, user_id, object_id,
            strftime(anchor_at, '%Y-%m-%dT%H:%M:%SZ'), cycle::varchar) as dedupe_key
    from in_scope
),

final as (
    select
        events.notification_id,
        events.event_type,
        events.user_id,
        events.object_kind,
        events.object_id,
        events.anchor_at,
        events.cycle,
        events.trigger_at,
        events.dedupe_key,
        {{ notification_key_hash('events.dedupe_key') }} as dedupe_hash,
        events.is_recheck,
        coalesce(audiences.name, programs.name, events.scope_id) as object_name,
        events.course_set_id,
        events.due_at,
        events.completed_at,
        events.window_opens_at,
        events.expires_at,
        events.exception_type
    from keyed as events
    left join {{ ref('dim_audience') }} as audiences
        on events.object_kind = 'audience' and audiences.audience_id = events.scope_id
    left join programs
        on events.object_kind <> 'audience' and programs.program_id = events.scope_id
)

select * from final
