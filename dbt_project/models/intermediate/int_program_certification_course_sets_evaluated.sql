-- Read by both status marts: a table, kept up to date run by run (only the learners whose
-- inputs changed are evaluated again).
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
    Every certification learner on their current path, the latest cycle of
    fct_certification_user (its path, counting completions from current_path_counted_from,
    opened at current_path_opened_at): course_set_progress at compact grain with the
    learner key, read back like int_program_course_sets_evaluated. The status marts show
    this path for a certification (docs/programs.md, "Certifications").

    Incremental: each run evaluates again only the learners whose path, its opening or
    counting instant, their counted completions or the path's definition changed
    (macros/incremental_course_set_progress.sql).
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

-- with the learner key of int_program_route_users, which fct_program_user joins on
learners as (
    select
        {{ learner_key('program_keys.program_key', 'user_keys.user_key') }} as learner_key,
        certification_learners.certification_id as program_id,
        certification_learners.current_path as path,
        certification_learners.user_id,
        certification_learners.current_path_counted_from as counted_from,
        certification_learners.current_path_opened_at as opened_at,
        run_context.as_of
    from certification_learners
    inner join program_keys on program_keys.program_id = certification_learners.certification_id
    inner join user_keys on user_keys.user_id = certification_learners.user_id
    cross join run_context
),

progress as (
    {{ incremental_course_set_progress(
        'learners', 'course_sets', 'set_courses', 'completions', 'courses',
        user_keys='user_keys', program_keys='program_keys'
    ) }}
),

final as (
    select * from progress
)

select * from final
