-- Read by the course-set progress and by fct_program_assignment_route: a table.
{{ config(materialized='table') }}

{#-
    Who each assignment route of each program and certification selects in this run
    (docs/programs.md, "Routes and assignment"): one row per (program, route, user), with
    the route's assignment date for the user. Every route of every program at once, each
    kind with equality joins only:

    * organisation / position: a live job in one of the route's items, or anywhere below
      one with include_children (the ancestry bridges hold each item as its own ancestor);
    * audience: this run's members;
    * manager: the manager's reports, direct (depth 1) or all below; through the named job
      only when the route names one (the job-level bridge), else through any of their jobs;
    * users / group: the listed users.

    Deleted users are never selected. A broken program is not evaluated: it keeps the
    assignments it had on the previous run (their users still drop out once deleted).
    assigned_at is kept from the previous run while the route keeps selecting the user,
    else it is this run's as-of.

    Rows hold the integer keys the later models join on (macros/program_keys.sql),
    route_number, program_key, user_key and learner_key, with the user_id (completions and
    the due-date bases are joined on it); program_id and route_key are the route's, joined
    back by route_number where they are written (fct_program_assignment_route).
-#}

with

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

programs as (
    select * from {{ ref('stg_rules__programs') }}
),

-- every route with its number and its program's key
all_routes as (
    {{ route_numbers() }}
),

-- the routes evaluated in this run: those of programs that are not broken
routes as (
    select all_routes.*
    from all_routes
    inner join programs on programs.program_id = all_routes.program_id
    where not programs.is_broken
),

route_targets as (
    select * from {{ ref('stg_rules__program_route_targets') }}
),

jobs as (
    select * from {{ ref('dim_job_assignment') }}
),

organisation_ancestry as (
    select * from {{ ref('bdg_organisation_ancestry') }}
),

position_ancestry as (
    select * from {{ ref('bdg_position_ancestry') }}
),

audience_members as (
    select * from {{ ref('fct_audience_membership') }}
),

management as (
    select * from {{ ref('bdg_management') }}
),

management_jobs as (
    select * from {{ ref('bdg_management_job') }}
),

previous_route_users as (
    select * from {{ ref('stg_learnops__previous_program_route_users') }}
),

user_keys as (
    select * from {{ ref('int_audience_user_keys') }}
),

eligible_users as (
    select users.user_id, user_keys.user_key
    from {{ ref('dim_user') }} as users
    inner join user_keys on user_keys.user_id = users.user_id
    where users.status <> 'deleted'
),

-- ---------------------------------------------------------------- organisation / position
-- the items a route covers: each listed item, and with include_children its whole subtree
route_items as (
    select
        routes.route_number,
        routes.route_kind,
        route_targets.target_id as item_id
    from routes
    inner join route_targets
        on
            route_targets.program_id = routes.program_id
            and route_targets.route_key = routes.route_key
    where routes.route_kind in ('organisation', 'position') and not routes.include_children

    union all

    select routes.route_number, routes.route_kind, ancestry.descendant_id
    from routes
    inner join route_targets
        on
            route_targets.program_id = routes.program_id
            and route_targets.route_key = routes.route_key
    inner join organisation_ancestry as ancestry on ancestry.ancestor_id = route_targets.target_id
    where routes.route_kind = 'organisation' and routes.include_children

    union all

    select routes.route_number, routes.route_kind, ancestry.descendant_id
    from routes
    inner join route_targets
        on
            route_targets.program_id = routes.program_id
            and route_targets.route_key = routes.route_key
    inner join position_ancestry as ancestry on ancestry.ancestor_id = route_targets.target_id
    where routes.route_kind = 'position' and routes.include_children
),

job_items as (
    select user_id, 'organisation' as route_kind, organisation_id as item_id
    from jobs
    where organisation_id is not null

    union all

    select user_id, 'position', position_id
    from jobs
    where position_id is not null
),

hierarchy_selections as (
    select route_items.route_number, job_items.user_id
    from route_items
    inner join job_items
        on
            job_items.route_kind = route_items.route_kind
            and job_items.item_id = route_items.item_id
),

-- ---------------------------------------------------------------- audience
audience_selections as (
    select routes.route_number, audience_members.user_id
    from routes
    inner join route_targets
        on
            route_targets.program_id = routes.program_id
            and route_targets.route_key = routes.route_key
    inner join audience_members on audience_members.audience_id = route_targets.target_id
    where routes.route_kind = 'audience'
),

-- ---------------------------------------------------------------- manager
manager_selections as (
    -- any of the manager's jobs: the user-level bridge (smallest depth over their jobs)
    select routes.route_number, management.report_user_id as user_id
    from routes
    inner join management on management.manager_user_id = routes.manager_user_id
    where
        routes.route_kind = 'manager'
        and routes.manager_job_id is null
        and (routes.manager_scope = 'all_below' or management.depth = 1)

    union all

    -- through the named job only: the job-level bridge
    select routes.route_number, management_jobs.report_user_id
    from routes
    inner join management_jobs
        on
            management_jobs.manager_user_id = routes.manager_user_id
            and management_jobs.manager_job_id = routes.manager_job_id
    where
        routes.route_kind = 'manager'
        and (routes.manager_scope = 'all_below' or management_jobs.depth = 1)
),

-- ---------------------------------------------------------------- users / group
listed_selections as (
    select routes.route_number, route_targets.target_id as user_id
    from routes
    inner join route_targets
        on
            route_targets.program_id = routes.program_id
            and route_targets.route_key = routes.route_key
    where routes.route_kind in ('users', 'group')
),

-- ---------------------------------------------------------------- all routes
-- a user can reach a hierarchy or manager route more than once (through several jobs or
-- items): those are made distinct. An audience's members and a route's targets are each
-- listed once, and routes of different kinds never share a key: no distinct needed there
selections as (
    select distinct *
    from (
        select * from hierarchy_selections
        union all
        select * from manager_selections
    )

    union all

    select * from audience_selections

    union all

    select * from listed_selections
),

-- broken programs: last run's assignments, as they were (on the routes still defined)
kept_selections as (
    select all_routes.route_number, previous_route_users.user_id
    from previous_route_users
    inner join programs on programs.program_id = previous_route_users.program_id
    inner join all_routes
        on
            all_routes.program_id = previous_route_users.program_id
            and all_routes.route_key = previous_route_users.route_key
    where programs.is_broken
),

route_users as (
    select *, false as is_kept from selections
    union all
    select *, true as is_kept from kept_selections
),

-- the text ids of the route are the routes' (fct_program_assignment_route joins them back)
final as (
    select
        route_users.user_id,
        coalesce(previous_route_users.assigned_at, run_context.as_of) as assigned_at,
        route_users.is_kept,
        route_users.route_number,
        all_routes.program_key,
        eligible_users.user_key,
        {{ learner_key('all_routes.program_key', 'eligible_users.user_key') }} as learner_key
    from route_users
    inner join eligible_users on eligible_users.user_id = route_users.user_id
    inner join all_routes on all_routes.route_number = route_users.route_number
    left join previous_route_users
        on
            previous_route_users.program_id = all_routes.program_id
            and previous_route_users.route_key = all_routes.route_key
            and previous_route_users.user_id = route_users.user_id
    cross join run_context
)

select * from final
