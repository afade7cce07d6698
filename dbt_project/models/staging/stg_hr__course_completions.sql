with

source as (
    select * from {{ source('hr', 'course_completion') }}
),

renamed as (
    select
        user_id,
        course_id,
        completed_at,
        grade,
        first_seen_run_id
    from source
)

select * from renamed
