with

source as (
    select * from {{ source('hr', 'user') }}
),

renamed as (
    select
        user_id,
        username,
        email,
        first_name,
        last_name,
        city,
        country,
        lang,
        timezone,
        institution,
        department,
        is_suspended,
        email_stop,
        status,
        removed_reason,
        time_modified,
        first_seen_run_id
    from source
)

select * from renamed
