with

source as (
    select * from {{ source('hr', 'position_custom_field') }}
),

renamed as (
    select
        position_id,
        field_name,
        value as field_value
    from source
)

select * from renamed
