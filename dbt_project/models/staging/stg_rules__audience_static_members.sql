with

source as (
    select * from {{ source('rules', 'audience_static_member') }}
),

renamed as (
    select
        audience_id,
        user_id
    from source
)

select * from renamed
