with

source as (
    select * from {{ source('learnops', 'previous_program_route_user') }}
),

renamed as (
    select
        program_id,
        route_key,
        user_id,
        assigned_at
    from source
)

select * from renamed
