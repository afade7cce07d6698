with

source as (
    select * from {{ source('rules', 'audience_node_value') }}
),

renamed as (
    select
        node_id,
        value,
        value_lower
    from source
)

select * from renamed
