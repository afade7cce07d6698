{#- Rows replaced by a run are unsent ones it cancels (new rows are new message ids): the
    predicate keeps the delete from comparing every message id of the outbox. The
    post-hook fills dedupe_hash in rows made before the column existed (once). -#}
{{
    config(
        materialized='incremental',
        unique_key='message_id',
        incremental_strategy='delete+insert',
        incremental_predicates=["status in ('pending', 'held', 'deferred')"],
        on_schema_change='append_new_columns',
        post_hook=[
            "update {{ this }} set dedupe_hash = "
            ~ notification_key_hash('dedupe_key') ~ " where dedupe_hash is null",
        ],
    )
}}

{#-
    One row per message to one recipient (SPEC §5, docs/notifications.md). Rows are never
    removed: each run appends the messages of events it is the first to see and moves
    unsent ones on (cancelled); delivery outcomes come from the delivery ledger, folded into
    this table by the flow before each build.

    A new row's status, in this order:
      suppressed    the go-live baseline (first run on the warehouse, or --baseline);
      no_address    the recipient has no email address;
      skipped_late  created more than max_lateness after its trigger instant;
      digested      a manager copy folded into that manager's digest (manager_digest);
      deferred      beyond the recipient's per-user daily cap: sent from not_before, the
                    start of a later local day. A recipient's messages are queued day after
                    day, so the days from today on are full but the last;
      held          the run creates more messages to send than max_per_run; an admin
                    releases them (`learnops notify --release`);
      pending       to send.
    Lateness is judged here, once: held and deferred rows never age into skipped_late.
    An unsent timed reminder whose condition no longer holds (the learner completed, the
    due date moved) becomes `cancelled`, as does any unsent copy about a learner who is no
    longer active.
-#}

{%- set timed = ['program_due', 'program_overdue', 'courseset_due', 'courseset_overdue',
    'program_followup', 'certification_window_open', 'certification_expiring',
    'certification_expired'] -%}
{%- set sendable = "('pending', 'held', 'deferred')" -%}
{%- set recent = "timezone('UTC', " ~ run_as_of() ~ " - interval 2 day)" -%}

with

run_context as (
    select
        *,
        timezone('UTC', as_of) as as_of_tz,
        timezone(site_timezone, timezone('UTC', as_of))::date as local_today
    from {{ ref('stg_learnops__run_context') }}
),

settings as (
    select * from {{ ref('stg_rules__notification_settings') }}
),

messages as (
    select * from {{ ref('int_notification_messages') }}
),

events as (
    select dedupe_key from {{ ref('int_notification_events') }}
),

active_learners as (
    select user_id from {{ ref('dim_user') }}
    where status = 'active'
),

{#- The outbox as the last run left it, in the two parts a run reads, each a scan with its
    own filter (a CTE read twice would be materialised with the filters of both): the unsent
    rows, which it may cancel, and the rows of the last two days, which the daily cap
    counts (a local day starts at most 38 h before the as-of, UTC-14 to UTC+14 and a day;
    only deferred rows have a not_before). Never the whole history. -#}
unsent as (
    {%- if is_incremental() %}
    select * from {{ this }}
    where status in {{ sendable }}
    {%- else %}
    select null::varchar as message_id where false
    {%- endif %}
),

recent_rows as (
    {%- if is_incremental() %}
    select recipient_email, status, not_before, created_at from {{ this }}
    where not_before is null and created_at >= {{ recent }}
    union all
    select recipient_email, status, not_before, created_at from {{ this }}
    where not_before >= {{ recent }}
    {%- else %}
    select
        null::varchar as recipient_email, null::varchar as status,
        null::timestamptz as not_before, null::timestamptz as created_at
    where false
    {%- endif %}
),

new_messages as (
    select
        messages.*,
        case
            when run_context.is_baseline then 'suppressed'
            when messages.recipient_email is null then 'no_address'
            when run_context.as_of > messages.trigger_at
                + to_months(coalesce(settings.max_lateness_months, 0)::integer)
                + to_seconds(coalesce(settings.max_lateness_seconds, 0)::bigint)
                then 'skipped_late'
            else 'pending'
        end as first_status
    {# int_notification_messages holds only events the outbox has not seen, so every
       message id is new (the unique test on message_id guards it) #}
    from messages
    cross join run_context
    left join settings on true
),

{#- manager copies of this run folded into one mail per manager (two or more only) -#}
digest_groups as (
    select recipient_email
    from new_messages
    where first_status = 'pending' and recipient_role = 'manager'
        and (select coalesce(bool_or(is_manager_digest), false) from settings)
    group by recipient_email
    having count(*) >= 2
),

folded as (
    select
        new_messages.*,
        digest_groups.recipient_email is not null as is_folded,
        left(sha256(concat_ws('|', 'manager_digest', new_messages.recipient_email,
            run_context.run_id)), 32) as digest_id
    from new_messages
    cross join run_context
    left join digest_groups
        on new_messages.first_status = 'pending'
        and new_messages.recipient_role = 'manager'
        and digest_groups.recipient_email = new_messages.recipient_email
),

digests as (
    select
        any_value(digest_id) as message_id,
        concat_ws('|', 'manager_digest', any_value(recipient_user_id), 'none',
            strftime(any_value(run_context.as_of), '%Y-%m-%dT%H:%M:%SZ'), '0') as dedupe_key,
        'manager_digest' as notification_id,
        'digest' as event_type,
        any_value(recipient_user_id) as user_id,
        'none' as object_kind,
        'none' as object_id,
        any_value(run_context.as_of) as anchor_at,
        0 as cycle,
        min(trigger_at) as trigger_at,
        'manager' as recipient_role,
        any_value(recipient_user_id) as recipient_user_id,
        recipient_email,
        any_value(recipient_name) as recipient_name,
        any_value(recipient_timezone) as recipient_timezone,
        any_value(recipient_lang) as recipient_lang,
        'manager_digest' as template,
        json_object(
            'items', list(json(context) order by trigger_at, message_id),
            'item_count', count(*)
        )::varchar as context,
        'pending' as first_status
    from folded
    cross join run_context
    where is_folded
    group by recipient_email
),

{#- what this run would send, now or on a later day: the cap and the guard apply to it -#}
to_send as (
    select * exclude (is_folded, digest_id) from folded
    where first_status = 'pending' and not is_folded
    union all by name
    select * from digests
),

queued as (
    select
        to_send.*,
        coalesce(used.slots, 0)
            + row_number() over (
                partition by to_send.recipient_email order by to_send.trigger_at, to_send.message_id
            ) - 1 as queue_position
    from to_send
    left join (
        {#- slots already taken today and on later days: sent or still to send -#}
        select existing.recipient_email, count(*) as slots
        from recent_rows as existing
        cross join run_context
        where existing.status in ('pending', 'held', 'deferred', 'sent', 'failed')
            and timezone(run_context.site_timezone, coalesce(existing.not_before, existing.created_at))::date
                >= run_context.local_today
        group by existing.recipient_email
    ) as used using (recipient_email)
),

capped as (
    select
        queued.*,
        {#- a null cap means no cap -#}
        coalesce(floor(queue_position / nullif(settings.per_user_daily_cap, 0)), 0)::integer
            as day_offset
    from queued
    left join settings on true
),

guarded as (
    select
        capped.*,
        count(*) over () > coalesce(settings.max_per_run, 500) as is_held
    from capped
    left join settings on true
),

new_rows as (
    select
        guarded.* exclude (first_status, queue_position, day_offset, is_held),
        case
            when guarded.is_held then 'held'
            when guarded.day_offset > 0 then 'deferred'
            else 'pending'
        end as status,
        case when guarded.day_offset > 0 then timezone(run_context.site_timezone,
            (run_context.local_today + guarded.day_offset)::timestamp) end as not_before,
        null::varchar as digest_message_id
    from guarded
    cross join run_context

    union all by name
    select
        folded.* exclude (first_status, is_folded, digest_id),
        case when folded.is_folded then 'digested' else folded.first_status end as status,
        null::timestamptz as not_before,
        case when folded.is_folded then folded.digest_id end as digest_message_id
    from folded
    where folded.first_status <> 'pending' or folded.is_folded
),

created as (
    select
        new_rows.message_id,
        new_rows.dedupe_key,
        {#- a digest's key is made here -#}
        coalesce(new_rows.dedupe_hash, {{ notification_key_hash('new_rows.dedupe_key') }})
            as dedupe_hash,
        new_rows.notification_id,
        new_rows.event_type,
        new_rows.user_id,
        new_rows.object_kind,
        new_rows.object_id,
        timezone('UTC', new_rows.anchor_at) as anchor_at,
        new_rows.cycle::integer as cycle,
        timezone('UTC', new_rows.trigger_at) as trigger_at,
        new_rows.recipient_role,
        new_rows.recipient_user_id,
        new_rows.recipient_email,
        new_rows.recipient_name,
        new_rows.recipient_timezone,
        new_rows.recipient_lang,
        new_rows.template,
        new_rows.context,
        new_rows.status,
        new_rows.not_before,
        new_rows.digest_message_id,
        0 as attempts,
        run_context.as_of_tz as created_at,
        run_context.run_id as created_run_id,
        null::timestamptz as sent_at,
        null::varchar as last_error
    from new_rows
    cross join run_context
),

{%- if is_incremental() %}
cancelled as (
    select existing.* replace ('cancelled' as status)
    from unsent as existing
    where existing.event_type <> 'digest'
        and (
            (existing.event_type in ('{{ timed | join("', '") }}')
                and existing.dedupe_key not in (select dedupe_key from events))
            or (existing.recipient_role in ('learner', 'manager')
                and existing.user_id not in (select user_id from active_learners))
        )
),
{%- endif %}

final as (
    select * from created
    {%- if is_incremental() %}
    union all by name
    select * from cancelled
    {%- endif %}
)

select * from final
