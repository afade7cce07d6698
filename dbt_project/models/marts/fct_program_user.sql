{#-
    One row per assigned learner of each program and certification (SPEC §5): status, due
    date, completion and exception (docs/programs.md, "Status", "Exceptions").

    status, first hit wins: dismissed (a dismiss resolution), exception (open), future
    (every route waits on a first access that never happened), complete (the path's
    completion instant exists), in_progress (a course of the content was completed, ever),
    not_started. completed_at is set exactly when the status is complete. is_overdue = not
    complete and as-of > due_at.

    Certifications are here too (program_id = the certification id), with the progress on
    the primary path counted over all history: the first cycle (int_program_assignments).
-#}

with

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

assignments as (
    select * from {{ ref('int_program_assignments') }}
),

statuses as (
    select
        assignments.*,
        case
            when assignments.is_dismissed then 'dismissed'
            when assignments.is_exception_open then 'exception'
            when assignments.is_future then 'future'
            when assignments.is_complete then 'complete'
            when assignments.has_course_completion then 'in_progress'
            else 'not_started'
        end as status,
        run_context.as_of
    from assignments
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
        status <> 'complete' and coalesce(as_of > due_at, false) as is_overdue,
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
