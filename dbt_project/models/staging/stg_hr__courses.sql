with

source as (
    select * from {{ source('hr', 'course') }}
),

renamed as (
    select
        course_id,
        name,
        score
    from source
)

select * from renamed
