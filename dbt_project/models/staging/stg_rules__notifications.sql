with

source as (
    select * from {{ source('rules', 'notification') }}
),

renamed as (
    select
        notification_id,
        trigger,
        offset_months,
        offset_seconds,
        scope_kind,
        template,
        enabled as is_enabled,
        to_learner,
        to_managers,
        to_admins,
        line as source_line
    from source
)

select * from renamed
