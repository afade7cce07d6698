{#-
    One row per assigned learner of each program and certification (SPEC §5): status, due
    date, completion and exception (docs/programs.md, "Status", "Exceptions").

    status, first hit wins: dismissed (a dismiss resolution), exception (open), future
    (every route waits on a first access that never happened), complete (the path's
    completion instant exists), in_progress (a course of the content was completed, ever),
    not_started. completed_at is set exactly when the status is complete. is_overdue = not
    complete and as-of > due_at.

    Certifications are here too (program_id = the certification id): complete while
    fct_certification_user says certified (completed_at = the certification instant),
    otherwise the progress on the current path (int_program_certification_course_sets_evaluated).
    due_at stays the assignment's due date (the first certification's deadline, which the
    cycles read back through the previous state, so it must not move to the expiry);
    is_overdue compares the as-of with the current deadline: due_at before the first
    certification, the latest expiry after it.
-#}

with

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

assignments as (
    select * exclude (is_assigned, previous_status)
    from {{ ref('int_program_assignments') }}
    where is_assigned
),

certification_learners as (
    select * from {{ ref('fct_certification_user') }}
),

certification_progress as (
    {{ course_set_compact_learners(
        ref('int_program_certification_course_sets_evaluated'), keyed=true
    ) }}
),

certification_path_summaries as (
    select
        learner_key,
        path_courses_completed > 0 as has_course_completion,
        current_group_number
    from certification_progress
),

-- the path the status shows: the primary path for programs, the current one for
-- certifications
learner_paths as (
    select
        assignments.*,
        certification_learners.user_id is not null as is_on_certification_path,
        certification_learners.state as certification_state,
        certification_learners.certified_at,
        certification_learners.expires_at,
        certification_path_summaries.has_course_completion as certification_has_course_completion,
        certification_path_summaries.current_group_number as certification_current_group_number
    from assignments
    left join certification_learners
        on
            certification_learners.certification_id = assignments.program_id
            and certification_learners.user_id = assignments.user_id
    left join certification_path_summaries
        on certification_path_summaries.learner_key = assignments.learner_key
),

progress as (
    select
        * exclude (completed_at, has_course_completion, current_group_number),
        case
            when is_on_certification_path then certification_state = 'certified'
            else is_complete
        end as is_path_complete,
        case
            when is_on_certification_path then certified_at
            else completed_at
        end as completed_at,
        case
            when is_on_certification_path then coalesce(certification_has_course_completion, false)
            else has_course_completion
        end as has_course_completion,
        case
            when is_on_certification_path then certification_current_group_number
            else current_group_number
        end as current_group_number,
        case
            when is_on_certification_path and certified_at is not null then expires_at
            else due_at
        end as deadline_at
    from learner_paths
),

statuses as (
    select
        progress.*,
        case
            when progress.is_dismissed then 'dismissed'
            when progress.is_exception_open then 'exception'
            when progress.is_future then 'future'
            when progress.is_path_complete then 'complete'
            when progress.has_course_completion then 'in_progress'
            else 'not_started'
        end as status,
        run_context.as_of
    from progress
    cross join run_context
),

final as (
    select
        program_id,
        user_id,
        kind,
        status,
        due_at,
        case when status = 'complete' then completed_at end as completed_at,
        status <> 'complete' and coalesce(as_of > deadline_at, false) as is_overdue,
        exception_type,
        exception_resolution,
        exception_raised_at,
        assigned_at,
        due_route_key,
        route_count,
        case when status <> 'complete' then current_group_number end as current_group_number,
        minimum_time_months,
        minimum_time_seconds
    from statuses
)

select * from final
