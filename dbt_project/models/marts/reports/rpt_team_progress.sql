{#-
    One row per (manager, direct report): the report's programs and certifications in
    numbers (assigned, complete, in progress, overdue, open exceptions, next due date). The
    subject of each row is the report (user_id), so a team_all scope shows every team below
    the recipient, each row under its own direct manager.
-#}

with

direct_reports as (
    select manager_user_id, report_user_id as user_id
    from {{ ref('bdg_management') }}
    where depth = 1
),

program_users as (
    select * from {{ ref('fct_program_user') }}
),

learners as (
    select * from {{ ref('int_report_learners') }}
),

managers as (
    select user_id, full_name from {{ ref('int_report_learners') }}
),

learner_totals as (
    select
        user_id,
        count(*) as assigned,
        count(*) filter (where status = 'complete') as complete,
        count(*) filter (where status = 'in_progress') as in_progress,
        count(*) filter (where status = 'not_started') as not_started,
        count(*) filter (where is_overdue) as overdue,
        count(*) filter (where status = 'exception') as exceptions,
        min(due_at) filter (where status in ('not_started', 'in_progress')) as next_due_at
    from program_users
    group by user_id
),

final as (
    select
        direct_reports.manager_user_id,
        managers.full_name as manager_name,
        direct_reports.user_id,
        learners.username,
        learners.full_name,
        learners.email,
        learners.organisation_id,
        learners.organisation_name,
        cast(coalesce(learner_totals.assigned, 0) as integer) as assigned,
        cast(coalesce(learner_totals.complete, 0) as integer) as complete,
        cast(coalesce(learner_totals.in_progress, 0) as integer) as in_progress,
        cast(coalesce(learner_totals.not_started, 0) as integer) as not_started,
        cast(coalesce(learner_totals.overdue, 0) as integer) as overdue,
        cast(coalesce(learner_totals.exceptions, 0) as integer) as exceptions,
        learner_totals.next_due_at,
        cast(
            case
                when coalesce(learner_totals.assigned, 0) > 0
                    then learner_totals.complete / learner_totals.assigned
            end as double
        ) as completion_rate
    from direct_reports
    inner join learners
        on learners.user_id = direct_reports.user_id
    left join managers
        on managers.user_id = direct_reports.manager_user_id
    left join learner_totals
        on learner_totals.user_id = direct_reports.user_id
)

select * from final
