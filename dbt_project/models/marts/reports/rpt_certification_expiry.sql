{#-
    One row per certified learner per certification (certified, window open or expired):
    when the certification expires and in how many days from the run's as-of. "Expiring in
    the next N days" is a report filter on expires_at (within_next_days: N). The subject of
    each row is user_id.
-#}

with

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

certification_users as (
    select * from {{ ref('fct_certification_user') }}
    where certified_at is not null
),

programs as (
    select program_id, name from {{ ref('stg_rules__programs') }}
),

learners as (
    select * from {{ ref('int_report_learners') }}
),

final as (
    select
        certification_users.user_id,
        learners.username,
        learners.full_name,
        learners.email,
        learners.organisation_id,
        learners.organisation_name,
        learners.manager_name,
        certification_users.certification_id,
        programs.name as certification_name,
        certification_users.state,
        certification_users.certified_at,
        certification_users.window_opens_at,
        certification_users.expires_at,
        cast(date_diff('day', run_context.as_of, certification_users.expires_at) as integer)
            as days_until_expiry
    from certification_users
    inner join learners
        on learners.user_id = certification_users.user_id
    left join programs
        on programs.program_id = certification_users.certification_id
    cross join run_context
)

select * from final
