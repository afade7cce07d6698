{{ config(materialized='table') }}

{#-
    One row per new event of this run and recipient (docs/notifications.md): the learner, every
    direct manager of every job of the learner (one copy each however many jobs they share),
    the file's admins, the notification's fixed addresses. message_id is derived from the
    event's dedupe key and the recipient, so the outbox can tell a message it already holds.
    Events the outbox has seen are left out first; `context` is built only for messages
    that could be sent (not on the go-live baseline, not past max_lateness).

    A learner with emailstop gets no copy (their managers do); a learner without an email
    address gets a row with a null address (the outbox records it `no_address`). Managers
    must be active and not stopped; a manager without an address is recorded the same way.
-#}

{#- the outbox as the last run left it (this model runs before the outbox is rebuilt);
    one built before dedupe_hash existed gives its keys' digests on the fly, once -#}
{%- set outbox = adapter.get_relation(
    database=this.database, schema='main', identifier='notification_outbox') if execute -%}
{%- set outbox_has_hash = outbox is not none
    and 'dedupe_hash' in (adapter.get_columns_in_relation(outbox) | map(attribute='name') | list) -%}

with

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

settings as (
    select * from {{ ref('stg_rules__notification_settings') }}
),

{#- Only the window's events the outbox has not seen: a (notification, learner, object,
    anchor, cycle) is messaged once, so the recipients and the context of an old event are
    never rebuilt. Compared on the keys' 127-bit digests: a 16-byte column scans in a
    fraction of the time of the keys' text (4M rows at 100k users), and the recipients and
    contexts are joined back to their event on it too. Re-checked events are
    the outbox's own and only tell the outbox what still holds. -#}
events as (
    select events.*
    from {{ ref('int_notification_events') }} as events
    {%- if outbox_has_hash %}
    anti join (select dedupe_hash from {{ outbox }}) as seen using (dedupe_hash)
    {%- elif outbox is not none %}
    anti join (
        select distinct {{ notification_key_hash('dedupe_key') }} as dedupe_hash from {{ outbox }}
    ) as seen using (dedupe_hash)
    {%- endif %}
    where not events.is_recheck
),

{#- Whether a message of the event could go out: only those get a context (the go-live
    baseline alone records every event of the organisation, often tens per person). -#}
sendable_events as (
    select events.dedupe_hash
    from events
    cross join run_context
    left join settings on true
    where not run_context.is_baseline
        and run_context.as_of <= events.trigger_at
            + to_months(coalesce(settings.max_lateness_months, 0)::integer)
            + to_seconds(coalesce(settings.max_lateness_seconds, 0)::bigint)
),

notifications as (
    select * from {{ ref('stg_rules__notifications') }}
),

users as (
    select
        user_id,
        nullif(trim(email), '') as email,
        first_name,
        last_name,
        trim(concat_ws(' ', first_name, last_name)) as full_name,
        status,
        email_stop,
        nullif(trim(timezone), '') as timezone,
        nullif(trim(lang), '') as lang
    from {{ ref('dim_user') }}
),

direct_managers as (
    select distinct
        management.report_user_id as user_id,
        managers.user_id as manager_user_id,
        managers.email,
        managers.full_name,
        managers.status,
        managers.email_stop,
        managers.timezone,
        managers.lang
    from {{ ref('bdg_management') }} as management
    inner join users as managers on managers.user_id = management.manager_user_id
    where management.depth = 1
        and management.report_user_id in (select user_id from events)
),

manager_names as (
    select user_id, list(full_name order by full_name, manager_user_id) as names
    from direct_managers
    group by user_id
),

recipients as (
    select
        events.dedupe_hash, 'learner' as recipient_role, learners.user_id as recipient_user_id,
        learners.email as recipient_email, learners.full_name as recipient_name,
        learners.timezone as recipient_timezone, learners.lang as recipient_lang
    from events
    inner join notifications using (notification_id)
    inner join users as learners on learners.user_id = events.user_id
    where notifications.to_learner and not learners.email_stop

    union all
    select
        events.dedupe_hash, 'manager', managers.manager_user_id, managers.email, managers.full_name,
        managers.timezone, managers.lang
    from events
    inner join notifications using (notification_id)
    inner join direct_managers as managers on managers.user_id = events.user_id
    where notifications.to_managers and managers.status = 'active' and not managers.email_stop

    union all
    select events.dedupe_hash, 'admin', null, admins.email, null, null, null
    from events
    inner join notifications using (notification_id)
    cross join (select unnest(admins) as email from settings) as admins
    where notifications.to_admins

    union all
    select events.dedupe_hash, 'address', null, addresses.email, null, null, null
    from events
    inner join {{ ref('stg_rules__notification_addresses') }} as addresses using (notification_id)
),

contexts as (
    select
        events.dedupe_hash,
        to_json({
            'learner': {
                'user_id': learners.user_id,
                'first_name': learners.first_name,
                'last_name': learners.last_name,
                'full_name': learners.full_name
            },
            'manager_names': coalesce(manager_names.names, []),
            'object': {
                'kind': events.object_kind, 'id': events.object_id, 'name': events.object_name
            },
            'course_set': case when events.course_set_id is not null
                then {'id': events.course_set_id, 'name': events.course_set_id} end,
            'due_at': strftime(events.due_at, '%Y-%m-%dT%H:%M:%SZ'),
            'completed_at': strftime(events.completed_at, '%Y-%m-%dT%H:%M:%SZ'),
            'window_opens_at': strftime(events.window_opens_at, '%Y-%m-%dT%H:%M:%SZ'),
            'expires_at': strftime(events.expires_at, '%Y-%m-%dT%H:%M:%SZ'),
            'anchor_at': strftime(events.anchor_at, '%Y-%m-%dT%H:%M:%SZ'),
            'trigger_at': strftime(events.trigger_at, '%Y-%m-%dT%H:%M:%SZ'),
            'exception_type': events.exception_type
        })::varchar as context
    from events
    semi join sendable_events using (dedupe_hash)
    inner join users as learners on learners.user_id = events.user_id
    left join manager_names on manager_names.user_id = events.user_id
),

final as (
    select
        left(sha256(concat_ws('|', events.dedupe_key, recipients.recipient_role,
            coalesce(recipients.recipient_email, recipients.recipient_user_id))), 32)
            as message_id,
        events.dedupe_key,
        events.dedupe_hash,
        events.notification_id,
        events.event_type,
        events.user_id,
        events.object_kind,
        events.object_id,
        events.anchor_at,
        events.cycle,
        events.trigger_at,
        recipients.recipient_role,
        recipients.recipient_user_id,
        recipients.recipient_email,
        recipients.recipient_name,
        coalesce(recipients.recipient_timezone, run_context.site_timezone)
            as recipient_timezone,
        recipients.recipient_lang,
        notifications.template,
        contexts.context
    from events
    inner join recipients using (dedupe_hash)
    left join contexts using (dedupe_hash)
    inner join notifications using (notification_id)
    cross join run_context
)

select * from final
