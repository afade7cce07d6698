with

source as (
    select * from {{ source('rules', 'notification_scope') }}
),

renamed as (
    select
        notification_id,
        object_id
    from source
)

select * from renamed
