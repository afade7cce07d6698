with

users as (
    select * from {{ ref('stg_hr__users') }}
),

user_access as (
    select * from {{ ref('stg_hr__user_access') }}
),

final as (
    select
        users.user_id,
        users.username,
        users.email,
        users.first_name,
        users.last_name,
        users.status,
        users.city,
        users.country,
        users.lang,
        users.timezone,
        users.institution,
        users.department,
        users.is_suspended,
        users.email_stop,
        users.removed_reason,
        user_access.first_access_at,
        user_access.last_access_at
    from users
    left join user_access
        on user_access.user_id = users.user_id
)

select * from final
