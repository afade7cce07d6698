{{ config(materialized='view') }}

{#-
    One row per course set of the learner's path per assigned learner of each program and
    certification (docs/programs.md, "Course sets", "Groups"): the set's status and
    completion instant, its group, whether that group is the learner's current one, when
    the group opened and the set's due date.

    A group opens at the assignment (group 1) or when the group before it is done, never
    before the assignment; a group not yet open has no opens_at. The set due date is the
    opening plus the largest min_time of the group (periods compared as the rules loader
    compares them: a month is 30.436875 days), none when every min_time is 0. is_overdue:
    the set and its group are not complete and as-of > due_at.

    Certifications: the learner's current path (the latest cycle of fct_certification_user,
    counting completions from its window opening), as in fct_program_user; a certification
    learner without cycles (a dismissed one) shows the primary path.

    A view, as bdg_management_job: at 1M users x 10 assignments these are 32M rows, which
    the compact course-set tables (about a fifth of the rows; course_set_progress explains)
    give back on read in seconds, while writing them on every run cost more than the rest
    of the program models together.
-#}

with

certification_learners as (
    select * from {{ ref('fct_certification_user') }}
),

course_sets as (
    select * from {{ ref('stg_rules__program_course_sets') }}
),

primary_progress as (
    {{ course_set_compact_rows(ref('int_program_course_sets_evaluated')) }}
),

certification_progress as (
    {{ course_set_compact_rows(ref('int_program_certification_course_sets_evaluated')) }}
),

-- the path each learner's status shows: the primary path from the assignment, or a
-- certification learner's current path
progress as (
    select primary_progress.*
    from primary_progress
    anti join certification_learners
        on
            certification_learners.certification_id = primary_progress.program_id
            and certification_learners.user_id = primary_progress.user_id

    union all

    select * from certification_progress
),

-- each group's largest min_time
group_min_times as (
    {{ course_set_group_min_times('course_sets') }}
),

set_rows as (
    select
        progress.*,
        group_min_times.min_time.months as group_min_time_months,
        group_min_times.min_time.seconds as group_min_time_seconds,
        -- the as-of of the run that built the view, so reading it later gives that run's answer
        {{ run_as_of() }} as as_of
    from progress
    inner join group_min_times
        on
            group_min_times.program_id = progress.program_id
            and group_min_times.path = progress.path
            and group_min_times.group_number = progress.group_number
),

set_dues as (
    select
        *,
        case
            when group_min_time_months > 0 or group_min_time_seconds > 0
                then {{ add_period('group_opens_at', 'group_min_time_months', 'group_min_time_seconds') }}
        end as due_at
    from set_rows
),

final as (
    select
        program_id,
        path,
        set_id,
        user_id,
        set_position,
        group_number,
        run_number,
        kind,
        case
            when set_completed_at is not null then 'complete'
            when courses_completed > 0 then 'in_progress'
            else 'not_started'
        end as status,
        set_completed_at as completed_at,
        courses_completed,
        coalesce(group_number = current_group_number, false) as is_current_group,
        group_opens_at as opens_at,
        due_at,
        group_done_at as group_completed_at,
        set_completed_at is null and group_done_at is null and coalesce(as_of > due_at, false)
            as is_overdue
    from set_dues
)

select * from final
