{#-
    One row per (program or certification, route, user) the route selects in this run, with
    the route's assignment date and due date (docs/programs.md, "Due dates"). Every base is
    computed for the (route, user) pairs that need it only, by equality joins:

    * first_access: the user's first access (at or before the as-of); never accessed = the
      route is future;
    * assignment: the route's assignment date for the user;
    * job_start: the latest start date of the user's live jobs;
    * position_assigned: per live job holding the position, the start of its current
      unbroken stint in that position (job history); the latest over those jobs;
    * course_completion: the latest completion of the course at or before the as-of;
    * program_completion: that program's completion instant for the user, when assigned to
      it (primary path, int_program_course_sets_evaluated);
    * custom_field: the user's custom date field.

    A date without a time (job start, custom field) is the start of its day in UTC: the
    site timezone is not in the warehouse yet (docs/programs.md).

    The bases are joined back on (route_number, user_key), and the learner's key is kept
    for int_program_assignments (macros/program_keys.sql): this run's keys, not for readers.
-#}

with

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

route_users as (
    select * from {{ ref('int_program_route_users') }}
),

routes as (
    {{ route_numbers() }}
),

program_keys as (
    {{ program_keys() }}
),

users as (
    select * from {{ ref('dim_user') }}
),

jobs as (
    select * from {{ ref('dim_job_assignment') }}
),

job_history as (
    select * from {{ ref('dim_job_assignment_history') }}
),

completions as (
    select * from {{ ref('stg_hr__course_completions') }}
),

user_custom_fields as (
    select * from {{ ref('stg_hr__user_custom_fields') }}
),

progress as (
    {{ course_set_compact_learners(ref('int_program_course_sets_evaluated'), keyed=true) }}
),

route_user_rules as materialized (
    select
        routes.program_id,
        routes.route_key,
        route_users.user_id,
        route_users.route_number,
        route_users.user_key,
        route_users.learner_key,
        route_users.assigned_at,
        route_users.is_kept,
        routes.route_kind,
        routes.due_kind,
        routes.due_fixed_at,
        routes.due_base,
        routes.due_base_ref,
        routes.due_months,
        routes.due_seconds,
        due_programs.program_key as due_program_key
    from route_users
    inner join routes on routes.route_number = route_users.route_number
    -- the program a program_completion base refers to
    left join program_keys as due_programs
        on routes.due_base = 'program_completion' and due_programs.program_id = routes.due_base_ref
),

relative_route_users as (
    select * from route_user_rules
    where due_kind = 'relative'
),

-- ---------------------------------------------------------------- bases, one kind each
first_access_bases as (
    select r.route_number, r.user_key, users.first_access_at as base_at
    from relative_route_users as r
    inner join users on users.user_id = r.user_id
    cross join run_context
    -- an access after the as-of has not happened yet (a replay sees what the run saw)
    where r.due_base = 'first_access' and users.first_access_at <= run_context.as_of
),

assignment_bases as (
    select r.route_number, r.user_key, r.assigned_at as base_at
    from relative_route_users as r
    where r.due_base = 'assignment'
),

job_start_bases as (
    select r.route_number, r.user_key, max(jobs.start_date)::timestamp as base_at
    from relative_route_users as r
    inner join jobs on jobs.user_id = r.user_id
    where r.due_base = 'job_start' and jobs.start_date is not null
    group by r.route_number, r.user_key
),

-- position_assigned: the versions of each live job now in a referenced position; a stint
-- starts where the position changes or the job's history has a gap
referenced_positions as (
    select distinct due_base_ref as position_id
    from relative_route_users
    where due_base = 'position_assigned'
),

jobs_in_referenced_positions as (
    select jobs.user_id, jobs.job_id, jobs.position_id
    from jobs
    semi join referenced_positions on referenced_positions.position_id = jobs.position_id
),

job_versions as (
    select
        job_history.user_id,
        job_history.job_id,
        job_history.position_id,
        job_history.valid_from,
        job_history.is_current,
        coalesce(
            lag(job_history.position_id) over stint is distinct from job_history.position_id
            or lag(job_history.valid_to) over stint is distinct from job_history.valid_from,
            true
        ) as starts_stint
    from job_history
    semi join jobs_in_referenced_positions as live
        on live.user_id = job_history.user_id and live.job_id = job_history.job_id
    window stint as (partition by job_history.user_id, job_history.job_id order by job_history.valid_from)
),

job_stints as (
    select
        *,
        max(case when starts_stint then valid_from end) over (
            partition by user_id, job_id order by valid_from
            rows between unbounded preceding and current row
        ) as stint_started_at
    from job_versions
),

position_assigned_at as (
    select user_id, position_id, max(stint_started_at) as assigned_at
    from job_stints
    where is_current
    group by user_id, position_id
),

position_assigned_bases as (
    select r.route_number, r.user_key, position_assigned_at.assigned_at as base_at
    from relative_route_users as r
    inner join position_assigned_at
        on
            position_assigned_at.user_id = r.user_id
            and position_assigned_at.position_id = r.due_base_ref
    where r.due_base = 'position_assigned'
),

-- the completions of the courses a base names, first: the join on (user, course) below
-- then hashes two texts per completion of those courses only, not of every course
base_courses as (
    select distinct due_base_ref as course_id
    from relative_route_users
    where due_base = 'course_completion'
),

base_course_completions as (
    select completions.user_id, completions.course_id, completions.completed_at
    from completions
    semi join base_courses on base_courses.course_id = completions.course_id
),

course_completion_bases as (
    select r.route_number, r.user_key, max(completions.completed_at) as base_at
    from relative_route_users as r
    inner join base_course_completions as completions
        on completions.user_id = r.user_id and completions.course_id = r.due_base_ref
    cross join run_context
    where r.due_base = 'course_completion' and completions.completed_at <= run_context.as_of
    group by r.route_number, r.user_key
),

program_completion_bases as (
    select r.route_number, r.user_key, progress.path_completed_at as base_at
    from relative_route_users as r
    inner join progress
        on progress.learner_key = {{ learner_key('r.due_program_key', 'r.user_key') }}
    where r.due_base = 'program_completion' and progress.path_completed_at is not null
),

custom_field_bases as (
    select
        r.route_number,
        r.user_key,
        try_cast(fields.field_value as date)::timestamp as base_at
    from relative_route_users as r
    inner join user_custom_fields as fields
        on fields.user_id = r.user_id and fields.field_name = r.due_base_ref
    where r.due_base = 'custom_field' and try_cast(fields.field_value as date) is not null
),

bases as (
    select * from first_access_bases
    union all
    select * from assignment_bases
    union all
    select * from job_start_bases
    union all
    select * from position_assigned_bases
    union all
    select * from course_completion_bases
    union all
    select * from program_completion_bases
    union all
    select * from custom_field_bases
),

-- ---------------------------------------------------------------- due dates
route_dues as (
    select
        r.program_id,
        r.route_key,
        r.user_id,
        r.route_kind,
        r.assigned_at,
        r.due_kind,
        r.due_base,
        r.due_base_ref,
        bases.base_at as due_base_at,
        case r.due_kind
            when 'fixed' then r.due_fixed_at
            when 'relative' then {{ add_period('bases.base_at', 'r.due_months', 'r.due_seconds') }}
        end as due_at,
        coalesce(r.due_kind = 'relative' and r.due_base = 'first_access' and bases.base_at is null, false)
            as is_future,
        coalesce(r.due_kind = 'relative' and r.due_base <> 'first_access' and bases.base_at is null, false)
            as is_base_missing,
        r.is_kept,
        r.route_number,
        r.learner_key
    from route_user_rules as r
    left join bases on bases.route_number = r.route_number and bases.user_key = r.user_key
),

final as (
    select
        program_id,
        route_key,
        user_id,
        route_kind,
        assigned_at,
        due_kind,
        due_base,
        due_base_ref,
        due_base_at,
        due_at,
        is_future,
        is_base_missing,
        is_kept,
        route_number,
        learner_key
    from route_dues
)

select * from final
