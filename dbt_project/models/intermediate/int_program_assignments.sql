-- Read by both status marts and by the certification cycles: a table.
{{ config(materialized='table') }}

{#-
    One row per assigned learner of each program and certification (selected by at least
    one route in this run), against the last published state (docs/programs.md, "Due
    dates", "Exceptions"):

    * assigned_at: the earliest assignment date over the learner's current routes;
    * due_at: the latest due date over the routes, never earlier than the previous run's;
      a learner who is complete, or whose program is broken, keeps the previous run's due
      date; a realistic_due_date resolution applied in this run sets it to as-of + minimum
      time + 7 days;
    * due_route_key: the route whose due date the learner's is (ties: the smallest key);
      null when the date is not a current route's (kept from an earlier run, or set by a
      resolution);
    * exceptions: checked for a learner newly assigned (or no longer future) or whose due
      date moved later, who has no exception on record, is not future and whose program
      is not broken; first hit wins: duplicate_course (certifications), then, for a
      learner not complete, completion_time_unknown and time_allowance. An exception stays
      on record while the learner stays assigned; exception_resolution is null while it is
      open. A per-user resolution always applies (so changing it changes the outcome); the
      program's default resolves an open exception once, and what it gave is kept.

    Also one row per learner of the last published run who is no longer assigned
    (is_assigned false; the outer join with the previous state that every learner needs
    anyway finds them): program_id, user_id, previous_status, and due_at and completed_at as
    that run published them; nothing else in such a row means anything, and every reader
    but the notification events keeps is_assigned rows only. previous_status is the
    status the last run published (null for a learner new to the program).

    Holds what fct_program_user and the certification cycles read (and this run's changes).
    Also carries the learner's primary-path progress (completion instant, whether any
    course of the content was completed, the current group) for fct_program_user. Grouped
    and joined on the learner key (macros/program_keys.sql); only the previous state, which
    holds text ids, is joined on (program_id, user_id).
-#}

with

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

programs as (
    {{ program_keys() }}
),

user_keys as (
    select * from {{ ref('int_audience_user_keys') }}
),

route_dues as (
    select * from {{ ref('fct_program_assignment_route') }}
),

progress as (
    {{ course_set_compact_learners(ref('int_program_course_sets_evaluated'), keyed=true) }}
),

set_courses as (
    select * from {{ ref('stg_rules__program_course_set_courses') }}
),

previous_learners as (
    select * from {{ ref('stg_learnops__previous_program_users') }}
),

resolutions as (
    select * from {{ ref('stg_rules__program_exception_resolutions') }}
),

-- ---------------------------------------------------------------- per learner
learner_routes as (
    select
        route_dues.learner_key,
        any_value(route_dues.program_id) as program_id,
        any_value(route_dues.user_id) as user_id,
        min(route_dues.assigned_at) as assigned_at,
        max(route_dues.due_at) as latest_route_due_at,
        -- the route with the latest due date; ties: the smallest key. One number orders
        -- both (the due date's microseconds, then the route number, which orders a
        -- program's routes by key and stays below 10^6 as there are far fewer routes; far
        -- cheaper than a struct at 10M learners)
        arg_min(
            route_dues.route_key,
            -epoch_us(route_dues.due_at)::hugeint * 1000000 + route_dues.route_number
        ) filter (where route_dues.due_at is not null) as latest_due_route_key,
        bool_and(route_dues.is_future) as is_future,
        bool_or(route_dues.is_base_missing) as has_missing_due_base,
        count(*) as route_count
    from route_dues
    group by route_dues.learner_key
),

learner_progress as (
    select
        learner_key,
        path_completed_at as completed_at,
        current_group_number,
        path_courses_completed > 0 as has_course_completion
    from progress
),

-- duplicate_course: pairs of certifications sharing a course (of either path)
certification_courses as (
    select distinct programs.program_key, set_courses.course_id
    from set_courses
    inner join programs on programs.program_id = set_courses.program_id
    where programs.kind = 'certification'
),

certification_pairs as (
    select distinct mine.program_key, other.program_key as other_program_key
    from certification_courses as mine
    inner join certification_courses as other
        on other.course_id = mine.course_id
    where other.program_key <> mine.program_key
),

certification_learners as materialized (
    select learner_routes.learner_key
    from learner_routes
    semi join certification_courses
        on certification_courses.program_key = {{ learner_program_key('learner_routes.learner_key') }}
),

-- each learner's other certifications that share a course with this one, then whether
-- the learner holds one of them (a semi join: never every pair of a user's learners); a
-- learner key less its program's part is the user key
duplicate_course_learners as (
    select distinct certification_learners.learner_key
    from certification_learners
    inner join certification_pairs
        on certification_pairs.program_key = {{ learner_program_key('certification_learners.learner_key') }}
    semi join certification_learners as other
        on
            other.learner_key = certification_learners.learner_key
                + (certification_pairs.other_program_key - certification_pairs.program_key)
                * 4294967296
),

-- the per-user resolutions of assigned learners, by learner key
keyed_resolutions as (
    select
        {{ learner_key('programs.program_key', 'user_keys.user_key') }} as learner_key,
        resolutions.resolution
    from resolutions
    inner join programs on programs.program_id = resolutions.program_id
    inner join user_keys on user_keys.user_id = resolutions.user_id
),

learners as (
    select
        learner_routes.learner_key is not null as is_assigned,
        coalesce(learner_routes.program_id, previous_learners.program_id) as program_id,
        coalesce(learner_routes.user_id, previous_learners.user_id) as user_id,
        learner_routes.* exclude (program_id, user_id),
        programs.kind,
        programs.is_broken,
        programs.minimum_time_months,
        programs.minimum_time_seconds,
        programs.exception_default,
        learner_progress.completed_at,
        coalesce(learner_progress.has_course_completion, false) as has_course_completion,
        learner_progress.current_group_number,
        learner_progress.completed_at is not null as is_complete,
        duplicate_course_learners.learner_key is not null as has_duplicate_course,
        keyed_resolutions.resolution as user_resolution,
        previous_learners.user_id is not null as was_assigned,
        previous_learners.status as previous_status,
        previous_learners.due_at as previous_due_at,
        previous_learners.completed_at as previous_completed_at,
        previous_learners.exception_type as previous_exception_type,
        previous_learners.exception_resolution as previous_exception_resolution,
        previous_learners.exception_raised_at as previous_exception_raised_at,
        run_context.as_of
    from learner_routes
    inner join programs
        on programs.program_key = {{ learner_program_key('learner_routes.learner_key') }}
    cross join run_context
    left join learner_progress on learner_progress.learner_key = learner_routes.learner_key
    left join duplicate_course_learners
        on duplicate_course_learners.learner_key = learner_routes.learner_key
    left join keyed_resolutions on keyed_resolutions.learner_key = learner_routes.learner_key
    -- full: last run's learners no longer assigned are kept, as rows with is_assigned false
    full join previous_learners
        on
            previous_learners.program_id = learner_routes.program_id
            and previous_learners.user_id = learner_routes.user_id
),

-- ---------------------------------------------------------------- due date before exceptions
due_candidates as (
    select
        *,
        not was_assigned or previous_status = 'future' as is_new_assignment,
        case
            -- a complete learner's due date no longer moves; a broken program keeps its state
            when (is_complete or is_broken) and was_assigned then previous_due_at
            else greatest(previous_due_at, latest_route_due_at)
        end as candidate_due_at,
        previous_exception_type is not null and previous_exception_resolution is null
            as was_exception_open,
        previous_exception_resolution is not null as was_exception_resolved,
        {{ add_period('as_of', 'minimum_time_months', 'minimum_time_seconds') }}
            as minimum_time_ends_at
    from learners
),

checks as (
    select
        *,
        coalesce(
            was_assigned
            and not is_new_assignment
            and candidate_due_at is not null
            and (previous_due_at is null or candidate_due_at > previous_due_at),
            false
        ) as is_due_later
    from due_candidates
),

raised as (
    select
        *,
        case
            when
                not is_broken
                and not is_future
                and (is_new_assignment or is_due_later)
                and not was_exception_open
                and not was_exception_resolved
                then case
                    when kind = 'certification' and has_duplicate_course then 'duplicate_course'
                    when not is_complete and has_missing_due_base then 'completion_time_unknown'
                    when not is_complete and candidate_due_at < minimum_time_ends_at
                        then 'time_allowance'
                end
        end as raised_exception_type
    from checks
),

exceptions as (
    select
        *,
        case
            when raised_exception_type is not null then raised_exception_type
            when was_exception_open or was_exception_resolved then previous_exception_type
        end as exception_type,
        case
            when raised_exception_type is not null then as_of
            when was_exception_open or was_exception_resolved then previous_exception_raised_at
        end as exception_raised_at
    from raised
),

resolved as (
    select
        *,
        case
            when exception_type is null then null
            when is_broken then previous_exception_resolution
            else nullif(
                coalesce(
                    user_resolution,
                    case when was_exception_resolved then previous_exception_resolution end,
                    exception_default
                ),
                'open'
            )
        end as exception_resolution,
        minimum_time_ends_at + interval 7 days as realistic_due_at
    from exceptions
),

due_dates as (
    select
        *,
        case
            when
                exception_resolution = 'realistic_due_date'
                and previous_exception_resolution is distinct from 'realistic_due_date'
                then realistic_due_at
            else candidate_due_at
        end as due_at
    from resolved
),

final as (
    select
        program_id,
        user_id,
        is_assigned,
        previous_status,
        learner_key,
        kind,
        assigned_at,
        route_count,
        due_at,
        case when due_at = latest_route_due_at then latest_due_route_key end as due_route_key,
        is_future,
        is_new_assignment,
        is_due_later,
        is_complete,
        case when is_assigned then completed_at else previous_completed_at end as completed_at,
        has_course_completion,
        current_group_number,
        minimum_time_months,
        minimum_time_seconds,
        realistic_due_at,
        exception_type,
        exception_resolution,
        exception_raised_at,
        raised_exception_type is not null as is_exception_raised,
        exception_type is not null and exception_resolution is null as is_exception_open,
        coalesce(exception_resolution = 'dismiss', false) as is_dismissed
    from due_dates
)

select * from final
