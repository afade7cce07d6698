with

source as (
    select * from {{ source('rules', 'notification_address') }}
),

renamed as (
    select
        notification_id,
        email
    from source
)

select * from renamed
