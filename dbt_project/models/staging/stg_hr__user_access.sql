with

source as (
    select * from {{ source('hr', 'user_access') }}
),

renamed as (
    select
        user_id,
        first_access_at,
        last_access_at
    from source
)

select * from renamed
