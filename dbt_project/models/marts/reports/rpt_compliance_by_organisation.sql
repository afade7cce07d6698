{#-
    One row per (organisation, program or certification): the learners with a job in the
    organisation or below it (include children = the whole subtree, each learner once),
    assigned, complete, overdue, expired and the completion rate. The subject of each row
    is organisation_id: an organisation-scoped recipient sees the organisations of their
    subtrees, whose learners are all within their scope.
-#}

with

jobs as (
    select distinct user_id, organisation_id
    from {{ ref('dim_job_assignment') }}
    where organisation_id is not null
),

ancestry as (
    select ancestor_id, descendant_id from {{ ref('bdg_organisation_ancestry') }}
),

organisations as (
    select organisation_id, name, depth from {{ ref('dim_organisation') }}
),

programs as (
    select program_id, name from {{ ref('stg_rules__programs') }}
),

program_users as (
    select
        program_users.program_id,
        program_users.user_id,
        program_users.kind,
        program_users.status,
        program_users.is_overdue,
        certification_users.state = 'expired' as is_expired
    from {{ ref('fct_program_user') }} as program_users
    left join {{ ref('fct_certification_user') }} as certification_users
        on
            certification_users.certification_id = program_users.program_id
            and certification_users.user_id = program_users.user_id
    where program_users.status <> 'dismissed'
),

-- each learner once per organisation above (or at) any of their jobs
learner_organisations as (
    select distinct ancestry.ancestor_id as organisation_id, jobs.user_id
    from jobs
    inner join ancestry
        on ancestry.descendant_id = jobs.organisation_id
),

counted as (
    select
        learner_organisations.organisation_id,
        program_users.program_id,
        any_value(program_users.kind) as kind,
        count(*) as assigned,
        count(*) filter (where program_users.status = 'complete') as complete,
        count(*) filter (where program_users.is_overdue) as overdue,
        count(*) filter (where program_users.is_expired) as expired
    from learner_organisations
    inner join program_users
        on program_users.user_id = learner_organisations.user_id
    group by learner_organisations.organisation_id, program_users.program_id
),

final as (
    select
        counted.organisation_id,
        organisations.name as organisation_name,
        organisations.depth as organisation_depth,
        counted.program_id,
        programs.name as program_name,
        counted.kind,
        cast(counted.assigned as integer) as assigned,
        cast(counted.complete as integer) as complete,
        cast(counted.overdue as integer) as overdue,
        cast(counted.expired as integer) as expired,
        cast(counted.complete / counted.assigned as double) as completion_rate
    from counted
    inner join organisations
        on organisations.organisation_id = counted.organisation_id
    left join programs
        on programs.program_id = counted.program_id
)

select * from final
