with

source as (
    select * from {{ source('learnops', 'previous_audience_membership') }}
),

renamed as (
    select
        audience_id,
        user_id,
        joined_at
    from source
)

select * from renamed
