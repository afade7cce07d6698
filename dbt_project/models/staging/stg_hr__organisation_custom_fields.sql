with

source as (
    select * from {{ source('hr', 'organisation_custom_field') }}
),

renamed as (
    select
        organisation_id,
        field_name,
        value as field_value
    from source
)

select * from renamed
