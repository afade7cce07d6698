with

source as (
    select * from {{ source('rules', 'notification_setting') }}
),

renamed as (
    select
        sender_address,
        sender_name,
        reply_to,
        admins,
        max_per_run,
        max_lateness_months,
        max_lateness_seconds,
        per_user_daily_cap,
        manager_digest as is_manager_digest,
        relay_rate_per_minute,
        alert_addresses,
        alert_reject_share
    from source
)

select * from renamed
