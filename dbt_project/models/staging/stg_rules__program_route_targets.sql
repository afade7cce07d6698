with

source as (
    select * from {{ source('rules', 'program_route_target') }}
),

renamed as (
    select
        program_id,
        route_key,
        target_id
    from source
)

select * from renamed
