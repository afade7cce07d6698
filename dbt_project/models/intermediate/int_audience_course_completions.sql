{#- The completions of the courses some leaf lists, keyed for int_audience_leaf_sets. -#}

with

listed_courses as (
    select distinct course_no, course_id from {{ ref('int_audience_course_leaves') }}
),

completions as (
    select * from {{ ref('stg_hr__course_completions') }}
),

user_keys as (
    select * from {{ ref('int_audience_user_keys') }}
),

final as (
    select
        listed_courses.course_no,
        user_keys.user_key,
        epoch_us(completions.completed_at) as completed_us
    from completions
    inner join listed_courses on listed_courses.course_id = completions.course_id
    inner join user_keys on user_keys.user_id = completions.user_id
)

select * from final
