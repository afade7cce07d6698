with

source as (
    select * from {{ source('rules', 'program_course_set_course') }}
),

renamed as (
    select
        program_id,
        path,
        set_id,
        course_id
    from source
)

select * from renamed
