-- Read by both status marts: a table.
{{ config(materialized='table') }}

{#-
    Every certification learner on their current path, the latest cycle of
    fct_certification_user (its path, counting completions from current_path_counted_from,
    opened at current_path_opened_at): course_set_progress at compact grain with the
    learner key, read back like int_program_course_sets_evaluated. The status marts show
    this path for a certification (docs/programs.md, "Certifications").
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
    {{ course_set_progress(
        'learners', 'course_sets', 'set_courses', 'completions', 'courses', grain='compact',
        keyed=true, user_keys='user_keys'
    ) }}
),

final as (
    select * from progress
)

select * from final
