{#-
    One row per (organisation, program or certification): the learners with a job in the
    organisation or below it (include children = the whole subtree, each learner once),
    assigned, complete, overdue, expired and the completion rate. The subject of each row
    is organisation_id: an organisation-scoped recipient sees the organisations of their
    subtrees, whose learners are all within their scope.
-#}

with

-- organisations and programs are grouped on numbers, not on their text ids: the counts
-- below group millions of rows
organisations as (
    select
        organisation_id,
        name,
        depth,
        (row_number() over (order by organisation_id))::integer as organisation_no
    from {{ ref('dim_organisation') }}
),

programs as (
    select
        program_id,
        name,
        kind,
        (row_number() over (order by program_id))::integer as program_no
    from {{ ref('stg_rules__programs') }}
),

jobs as (
    select distinct jobs.user_id, organisations.organisation_no
    from {{ ref('dim_job_assignment') }} as jobs
    inner join organisations on organisations.organisation_id = jobs.organisation_id
),

ancestry as (
    select ancestors.organisation_no as ancestor_no, descendants.organisation_no as descendant_no
    from {{ ref('bdg_organisation_ancestry') }} as ancestry
    inner join organisations as ancestors on ancestors.organisation_id = ancestry.ancestor_id
    inner join organisations as descendants
        on descendants.organisation_id = ancestry.descendant_id
),

program_users as (
    select
        programs.program_no,
        program_users.user_id,
        program_users.status,
        program_users.is_overdue,
        certification_users.state = 'expired' as is_expired
    from {{ ref('fct_program_user') }} as program_users
    inner join programs on programs.program_id = program_users.program_id
    left join {{ ref('fct_certification_user') }} as certification_users
        on
            certification_users.certification_id = program_users.program_id
            and certification_users.user_id = program_users.user_id
    where program_users.status <> 'dismissed'
),

-- Each learner counts once per organisation at or above any of their jobs. Most learners
-- have their jobs in one organisation: they are counted there, per program, and those
-- counts are summed up the tree (each such learner reaches each ancestor once). Only the
-- learners with jobs in several organisations, whose subtrees can overlap, are counted per
-- ancestor one by one (made distinct). At 1M users x 10 programs this groups 16M rows (2.5M
-- counts rolled up, 13.9M rows of the 100k learners in several organisations) instead of
-- every learner row times the depth of the tree.
user_organisations as (
    select
        user_id,
        any_value(organisation_no) as organisation_no,
        count(*) = 1 as is_in_one_organisation
    from jobs
    group by user_id
),

single_organisation_counts as (
    select
        user_organisations.organisation_no,
        program_users.program_no,
        count(*) as assigned,
        count(*) filter (where program_users.status = 'complete') as complete,
        count(*) filter (where program_users.is_overdue) as overdue,
        count(*) filter (where program_users.is_expired) as expired
    from program_users
    inner join user_organisations
        on user_organisations.user_id = program_users.user_id
    where user_organisations.is_in_one_organisation
    group by user_organisations.organisation_no, program_users.program_no
),

rolled_up_counts as (
    select
        ancestry.ancestor_no as organisation_no,
        single_organisation_counts.program_no,
        single_organisation_counts.assigned,
        single_organisation_counts.complete,
        single_organisation_counts.overdue,
        single_organisation_counts.expired
    from single_organisation_counts
    inner join ancestry
        on ancestry.descendant_no = single_organisation_counts.organisation_no
),

several_organisation_learners as (
    select distinct ancestry.ancestor_no as organisation_no, jobs.user_id
    from jobs
    inner join user_organisations
        on user_organisations.user_id = jobs.user_id
    inner join ancestry
        on ancestry.descendant_no = jobs.organisation_no
    where not user_organisations.is_in_one_organisation
),

several_organisation_counts as (
    select
        several_organisation_learners.organisation_no,
        program_users.program_no,
        1 as assigned,
        (program_users.status = 'complete')::integer as complete,
        coalesce(program_users.is_overdue, false)::integer as overdue,
        coalesce(program_users.is_expired, false)::integer as expired
    from several_organisation_learners
    inner join program_users
        on program_users.user_id = several_organisation_learners.user_id
),

counted as (
    select
        organisation_no,
        program_no,
        sum(assigned) as assigned,
        sum(complete) as complete,
        sum(overdue) as overdue,
        sum(expired) as expired
    from (
        select * from rolled_up_counts
        union all
        select * from several_organisation_counts
    )
    group by organisation_no, program_no
),

final as (
    select
        organisations.organisation_id,
        organisations.name as organisation_name,
        organisations.depth as organisation_depth,
        programs.program_id,
        programs.name as program_name,
        programs.kind,
        cast(counted.assigned as integer) as assigned,
        cast(counted.complete as integer) as complete,
        cast(counted.overdue as integer) as overdue,
        cast(counted.expired as integer) as expired,
        cast(counted.complete / counted.assigned as double) as completion_rate
    from counted
    inner join organisations
        on organisations.organisation_no = counted.organisation_no
    inner join programs
        on programs.program_no = counted.program_no
)

select * from final
