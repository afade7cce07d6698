-- Read by the due dates, the assignments and fct_program_course_set_user: a table, kept up
-- to date run by run (only the learners whose inputs changed are evaluated again).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='learner_key',
        on_schema_change='append_new_columns',
        pre_hook="
            {% if is_incremental() %}
            delete from {{ this }} as stored
            where
                stored.row_kind = 'template'
                or stored.learner_key not in (
                    select route_users.learner_key
                    from {{ ref('int_program_route_users') }} as route_users
                )
            {% endif %}
        ",
    )
}}

{#-
    Every assigned learner of every program and certification on the primary path,
    counting every completion up to the as-of, the path opened at the learner's assignment
    instant (the earliest assigned_at over their current routes): course_set_progress at
    compact grain (docs/programs.md, "Course sets", "Groups"; the macro describes the
    rows), with int_program_route_users' learner_key. Read back with
    course_set_compact_learners (one row per program, path and user: the path's completion
    instant, current group, completed courses) and course_set_compact_rows (one row per
    set).

    For a program this is its status. For a certification it is the first cycle (the
    primary path over all history), which a program_completion due date, "a complete
    learner's due date no longer moves" and the certification cycles read. It depends on
    no due date, so due dates may depend on it.

    Incremental (docs/programs.md, "Build"): a learner's rows depend only on their opening,
    their completions up to the as-of and their program's definition, so a run evaluates
    again only the learners for whom one of those changed:
    * new learners, and learners whose opening moved (a new earliest route);
    * learners of a program whose definition_hash changed: its course sets, their courses,
      the scores of those in a `some` set, its program key (keys are this run's, see program_keys.sql),
      or the evaluation's SQL (any edit to course_set_progress);
    * learners with a completion of one of their path's courses that is new in this run,
      or that falls in (previous as-of, as-of]: it counts now and did not before.
    Their stored rows are replaced (delete+insert on learner_key); the pre-hook deletes the
    rows of learners no longer assigned and every template, which are evaluated every run
    (one per path, a few rows). Without a previous run (run_context.previous_as_of null),
    every learner is evaluated. Rows carry definition_hash, the program's at evaluation.
-#}

with

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

route_users as (
    select * from {{ ref('int_program_route_users') }}
),

course_sets as (
    select * from {{ ref('stg_rules__program_course_sets') }}
),

set_courses as (
    select * from {{ ref('stg_rules__program_course_set_courses') }}
),

all_completions as (
    select * from {{ ref('stg_hr__course_completions') }}
),

courses as (
    select * from {{ ref('stg_hr__courses') }}
),

program_keys as (
    {{ program_keys() }}
),

user_keys as (
    select * from {{ ref('int_audience_user_keys') }}
),

-- grouped on the learner key, not the text pair (the user is the same in every row)
learner_openings as (
    select
        learner_key,
        any_value(program_key) as program_key,
        any_value(user_id) as user_id,
        min(assigned_at) as opened_at
    from route_users
    group by learner_key
),

assigned_learners as (
    select
        learner_openings.learner_key,
        program_keys.program_id,
        'primary' as path,
        learner_openings.user_id,
        null::timestamp as counted_from,
        learner_openings.opened_at,
        run_context.as_of
    from learner_openings
    inner join program_keys on program_keys.program_key = learner_openings.program_key
    cross join run_context
),

-- every path with a learner keeps its template, whoever is evaluated
template_paths as (
    select distinct program_id, path from assigned_learners
),

{#- The evaluation, rendered once: its text is part of every program's definition_hash,
    so an edited course_set_progress evaluates every learner again. -#}
{%- set progress_sql = course_set_progress(
    'learners', 'course_sets', 'set_courses', 'completions', 'courses', grain='compact',
    keyed=true, user_keys='user_keys', template_paths='template_paths'
) %}

-- what a learner's rows depend on besides their opening and completions, per program
set_definitions as (
    select
        program_id,
        hash(list(
            row(set_id, set_position, group_number, run_number, kind, min_courses, min_score,
                min_time_months, min_time_seconds, course_count)
            order by set_id
        )) as sets_hash
    from course_sets
    where path = 'primary'
    group by program_id
),

-- a course's score counts only in a `some` set
course_definitions as (
    select
        set_courses.program_id,
        hash(list(
            row(
                set_courses.set_id,
                set_courses.course_id,
                case when course_sets.kind = 'some' then courses.score end
            )
            order by set_courses.set_id, set_courses.course_id
        )) as courses_hash
    from set_courses
    inner join course_sets
        on
            course_sets.program_id = set_courses.program_id
            and course_sets.path = set_courses.path
            and course_sets.set_id = set_courses.set_id
    left join courses on courses.course_id = set_courses.course_id
    where set_courses.path = 'primary'
    group by set_courses.program_id
),

definitions as (
    select
        program_keys.program_id,
        hash(
            '{{ local_md5(progress_sql) }}',
            program_keys.program_key,
            set_definitions.sets_hash,
            course_definitions.courses_hash
        ) as definition_hash
    from program_keys
    left join set_definitions on set_definitions.program_id = program_keys.program_id
    left join course_definitions on course_definitions.program_id = program_keys.program_id
),
{%- if is_incremental() %}

-- one stored row per learner still assigned (the pre-hook removed the others)
stored_learners as (
    select learner_key, program_id, user_id, opened_at, definition_hash
    from {{ this }}
    where row_kind = 'templated_learner' or (row_kind = 'learner' and set_position = 1)
),

-- completions that count now and did not when the stored rows were evaluated
fresh_completions as (
    select all_completions.user_id, all_completions.course_id
    from all_completions
    cross join run_context
    where
        all_completions.completed_at <= run_context.as_of
        and (
            run_context.previous_as_of is null
            or all_completions.completed_at > run_context.previous_as_of
            or all_completions.first_seen_run_id = run_context.run_id
        )
),

fresh_learners as (
    select distinct {{ learner_key('program_keys.program_key', 'user_keys.user_key') }} as learner_key
    from fresh_completions
    inner join set_courses
        on set_courses.course_id = fresh_completions.course_id and set_courses.path = 'primary'
    inner join program_keys on program_keys.program_id = set_courses.program_id
    inner join user_keys on user_keys.user_id = fresh_completions.user_id
),

learners as (
    select assigned_learners.*
    from assigned_learners
    inner join definitions on definitions.program_id = assigned_learners.program_id
    left join stored_learners on stored_learners.learner_key = assigned_learners.learner_key
    where
        stored_learners.learner_key is null
        or stored_learners.program_id <> assigned_learners.program_id
        or stored_learners.user_id <> assigned_learners.user_id
        or stored_learners.opened_at is distinct from assigned_learners.opened_at
        or stored_learners.definition_hash is distinct from definitions.definition_hash
        or assigned_learners.learner_key in (select fresh_learners.learner_key from fresh_learners)
),

-- the evaluated learners' completions only
completions as (
    select all_completions.*
    from all_completions
    semi join learners on learners.user_id = all_completions.user_id
),
{%- else %}

learners as (
    select * from assigned_learners
),

completions as (
    select * from all_completions
),
{%- endif %}

progress as (
    {{ progress_sql }}
),

final as (
    select progress.*, definitions.definition_hash
    from progress
    inner join definitions on definitions.program_id = progress.program_id
)

select * from final
