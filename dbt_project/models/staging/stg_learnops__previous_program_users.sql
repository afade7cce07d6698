with

source as (
    select * from {{ source('learnops', 'previous_program_user') }}
),

renamed as (
    select
        program_id,
        user_id,
        assigned_at,
        due_at,
        status,
        completed_at,
        exception_type,
        exception_resolution,
        exception_raised_at
    from source
)

select * from renamed
