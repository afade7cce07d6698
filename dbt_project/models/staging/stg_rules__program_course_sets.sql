with

source as (
    select * from {{ source('rules', 'program_course_set') }}
),

renamed as (
    select
        program_id,
        path,
        set_id,
        set_position,
        group_number,
        run_number,
        kind,
        min_courses,
        min_score,
        min_time_months,
        min_time_seconds,
        course_count
    from source
)

select * from renamed
