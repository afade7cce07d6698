-- Read by the due dates, the assignments and fct_program_course_set_user: a table, kept up
-- to date run by run (only the learners whose inputs changed are evaluated again).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='learner_key',
        on_schema_change='append_new_columns',
        pre_hook="{{ incremental_course_set_pre_hook() }}",
        post_hook="{{ incremental_course_set_post_hook() }}",
    )
}}

{#-
    Every assigned learner of every program and certification on the primary path,
    counting every completion up to the as-of, the path opened at the learner's assignment
    instant (the earliest assigned_at over their current routes): course_set_progress at
    compact grain (docs/programs.md, "Course sets", "Groups"; the macro describes the
    rows), with int_program_route_users' learner_key. Read back with
    course_set_compact_learners (one row per program, path and user: the path's completion
    instant, current group, completed courses) and course_set_compact_rows (one row per
    set).

    For a program this is its status. For a certification it is the first cycle (the
    primary path over all history), which a program_completion due date, "a complete
    learner's due date no longer moves" and the certification cycles read. It depends on
    no due date, so due dates may depend on it.

    Incremental: each run evaluates again only the learners whose opening, counted
    completions or program definition changed (macros/incremental_course_set_progress.sql).
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

-- read by the check for new completions and by the evaluation: not materialised (20M rows)
completions as not materialized (
    select * from {{ ref('stg_hr__course_completions') }}
),

courses as (
    select * from {{ ref('stg_hr__courses') }}
),

program_keys as (
    {{ program_keys() }}
),

user_keys as (
    select * from {{ ref('int_audience_user_keys') }}
),

-- grouped on the learner key, not the text pair (the user is the same in every row)
learner_openings as (
    select
        learner_key,
        any_value(program_key) as program_key,
        any_value(user_id) as user_id,
        min(assigned_at) as opened_at
    from route_users
    group by learner_key
),

assigned_learners as (
    select
        learner_openings.learner_key,
        program_keys.program_id,
        'primary' as path,
        learner_openings.user_id,
        null::timestamp as counted_from,
        learner_openings.opened_at,
        run_context.as_of
    from learner_openings
    inner join program_keys on program_keys.program_key = learner_openings.program_key
    cross join run_context
),

progress as (
    {{ incremental_course_set_progress(
        'assigned_learners', 'course_sets', 'set_courses', 'completions', 'courses',
        user_keys='user_keys', program_keys='program_keys'
    ) }}
),

final as (
    select * from progress
)

select * from final
