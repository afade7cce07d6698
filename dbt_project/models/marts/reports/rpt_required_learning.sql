{#-
    One row per assigned learner per program or certification (docs/reports.md): who, where
    (the organisation of the learner's first job, for display; scoping uses every job), what
    is required of them, its status and dates. The subject of each row is user_id: scoped
    reports keep the rows whose learner is in the recipient's scope.
-#}

with

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

program_users as (
    select * from {{ ref('fct_program_user') }}
),

programs as (
    select program_id, name from {{ ref('stg_rules__programs') }}
),

certification_users as (
    select * from {{ ref('fct_certification_user') }}
),

learners as (
    select * from {{ ref('int_report_learners') }}
),

final as (
    select
        program_users.user_id,
        learners.username,
        learners.full_name,
        learners.email,
        learners.organisation_id,
        learners.organisation_name,
        learners.manager_name,
        program_users.program_id,
        programs.name as program_name,
        program_users.kind,
        program_users.status,
        program_users.assigned_at,
        program_users.due_at,
        program_users.completed_at,
        program_users.is_overdue,
        certification_users.state as certification_state,
        certification_users.expires_at,
        cast(
            case
                when program_users.due_at is not null and program_users.status <> 'complete'
                    then date_diff('day', run_context.as_of, program_users.due_at)
            end as integer
        ) as days_until_due
    from program_users
    inner join learners
        on learners.user_id = program_users.user_id
    left join programs
        on programs.program_id = program_users.program_id
    left join certification_users
        on
            certification_users.certification_id = program_users.program_id
            and certification_users.user_id = program_users.user_id
    cross join run_context
)

select * from final
