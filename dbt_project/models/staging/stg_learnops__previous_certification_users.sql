with

source as (
    select * from {{ source('learnops', 'previous_certification_user') }}
),

renamed as (
    select
        certification_id,
        user_id,
        state,
        certified_at,
        window_opens_at,
        expires_at
    from source
)

select * from renamed
