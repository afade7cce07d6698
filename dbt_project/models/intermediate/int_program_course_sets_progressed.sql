-- Read by the due dates, the assignments and both status marts: a table, computed once.
{{ config(materialized='table') }}

{#-
    Course-set progress of every assigned learner of every program and certification on
    the primary path, counting every completion up to the as-of and opening the path at
    the learner's assignment instant (the earliest assigned_at over their current routes):
    one row per (program, path, user, set), from the course_set_progress macro
    (docs/programs.md, "Course sets", "Groups").

    For a program this is its status. For a certification it is the first cycle (the
    primary path counted over all history), which is what a program_completion due date
    and "a complete learner's due date no longer moves" read; the current cycle of a
    certification is int_certification_cycles' business. It depends on no due date, so due
    dates may depend on it.
-#}

with

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

route_users as (
    select * from {{ ref('int_program_route_users') }}
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
        route_users.program_id,
        'primary' as path,
        route_users.user_id,
        null::timestamp as counted_from,
        min(route_users.assigned_at) as opened_at,
        any_value(run_context.as_of) as as_of
    from route_users
    cross join run_context
    group by route_users.program_id, route_users.user_id
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
