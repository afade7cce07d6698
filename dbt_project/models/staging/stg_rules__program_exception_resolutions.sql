with

source as (
    select * from {{ source('rules', 'program_exception_resolution') }}
),

renamed as (
    select
        program_id,
        user_id,
        resolution
    from source
)

select * from renamed
