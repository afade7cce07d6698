with

source as (
    select * from {{ source('hr', 'user_custom_field') }}
),

renamed as (
    select
        user_id,
        field_name,
        value as field_value
    from source
)

select * from renamed
