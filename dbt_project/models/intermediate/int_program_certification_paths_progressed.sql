-- Read by both status marts: a table, computed once.
{{ config(materialized='table') }}

{#-
    Course-set progress of every certification learner on their current path: one row per
    (certification, path, user, set), from the course_set_progress macro over the latest
    cycle of fct_certification_user (the path, counting completions from
    current_path_counted_from, opened at current_path_opened_at). fct_program_user and
    fct_program_course_set_user show this path for certifications (docs/programs.md,
    "Certifications": "otherwise the progress on the current path").
-#}

with

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

certification_learners as (
    select * from {{ ref('fct_certification_user') }}
),

course_sets as (
    select * from {{ ref('stg_rules__program_course_sets') }}
),

set_courses as (
    select * from {{ ref('stg_rules__program_course_set_courses') }}
),

completions as (
    select * from {{ ref('stg_hr__course_completions') }}
),

courses as (
    select * from {{ ref('stg_hr__courses') }}
),

learners as materialized (
    select
        certification_learners.certification_id as program_id,
        certification_learners.current_path as path,
        certification_learners.user_id,
        certification_learners.current_path_counted_from as counted_from,
        certification_learners.current_path_opened_at as opened_at,
        run_context.as_of
    from certification_learners
    cross join run_context
),

progress as (
    {{ course_set_progress('learners', 'course_sets', 'set_courses', 'completions', 'courses') }}
),

final as (
    select
        program_id,
        path,
        user_id,
        set_id,
        set_position,
        group_number,
        run_number,
        kind,
        min_time_months,
        min_time_seconds,
        opened_at,
        courses_completed,
        set_completed_at,
        run_completed_at,
        group_completed_at,
        group_done_at,
        group_opens_at,
        current_group_number,
        path_completed_at,
        path_courses_completed
    from progress
)

select * from final
