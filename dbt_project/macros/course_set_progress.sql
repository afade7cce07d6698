{#-
    Course-set logic of docs/programs.md ("Course sets", "Groups") for many learners at once.

    `learners`: a relation or CTE with one row per (program_id, path, user_id) to evaluate and
    the columns
        counted_from  timestamp, nullable: only completions at or after it count (a
                      certification cycle counts from its window opening); null = all history
        opened_at     timestamp: when the path opened for the learner (the assignment instant,
                      or the cycle's start); optional sets complete then, group 1 opens then
        as_of         timestamp: completions after it are ignored
    plus any others (ignored). `course_sets`, `set_courses`, `completions`, `courses` are the
    staging relations of rules.program_course_set, rules.program_course_set_course,
    hr.course_completion and hr.course.

    Renders a complete query (its own `with`), to be used as a CTE body: one row per
    (program_id, path, user_id, set_id) with the set's completion instant and its group's.
    A set, group or path that is not complete has a null instant.
-#}
{% macro course_set_progress(learners, course_sets, set_courses, completions, courses) %}
    with

    -- each listed course's earliest counted completion, per learner and set
    course_firsts as (
        select
            learners.program_id,
            learners.path,
            learners.user_id,
            set_courses.set_id,
            set_courses.course_id,
            min(completions.completed_at) as completed_at
        from {{ learners }} as learners
        inner join {{ set_courses }} as set_courses
            on
                set_courses.program_id = learners.program_id
                and set_courses.path = learners.path
        inner join {{ completions }} as completions
            on
                completions.user_id = learners.user_id
                and completions.course_id = set_courses.course_id
        -- one boolean, not comparisons: keeps DuckDB on the hash join (see int_audience_leaf_sets)
        where coalesce(
            completions.completed_at <= learners.as_of
            and completions.completed_at >= learners.counted_from,
            completions.completed_at <= learners.as_of
        )
        group by all
    ),

    -- `some` sets: the completion at which both thresholds were first met, in order
    some_running as (
        select
            course_firsts.*,
            count(*) over running as courses_so_far,
            sum(coalesce(courses.score, 0)) over running as score_so_far
        from course_firsts
        inner join {{ course_sets }} as sets
            on
                sets.program_id = course_firsts.program_id
                and sets.path = course_firsts.path
                and sets.set_id = course_firsts.set_id
        left join {{ courses }} as courses on courses.course_id = course_firsts.course_id
        where sets.kind = 'some'
        window running as (
            partition by
                course_firsts.program_id, course_firsts.path, course_firsts.user_id,
                course_firsts.set_id
            order by course_firsts.completed_at, course_firsts.course_id
            rows between unbounded preceding and current row
        )
    ),

    some_met as (
        select
            some_running.program_id,
            some_running.path,
            some_running.user_id,
            some_running.set_id,
            min(some_running.completed_at) as completed_at
        from some_running
        inner join {{ course_sets }} as sets
            on
                sets.program_id = some_running.program_id
                and sets.path = some_running.path
                and sets.set_id = some_running.set_id
        where
            some_running.courses_so_far >= sets.min_courses
            and some_running.score_so_far >= sets.min_score
        group by all
    ),

    set_counts as (
        select
            program_id,
            path,
            user_id,
            set_id,
            count(*) as courses_completed,
            min(completed_at) as first_completed_at,
            max(completed_at) as last_completed_at
        from course_firsts
        group by all
    ),

    set_instants as (
        select
            learners.program_id,
            learners.path,
            learners.user_id,
            learners.opened_at,
            sets.set_id,
            sets.set_position,
            sets.group_number,
            sets.run_number,
            sets.kind,
            sets.min_time_months,
            sets.min_time_seconds,
            coalesce(set_counts.courses_completed, 0) as courses_completed,
            case
                when sets.kind = 'optional' then learners.opened_at
                when sets.kind = 'some' and sets.min_courses = 0 and sets.min_score = 0
                    then learners.opened_at
                when sets.kind = 'some' then some_met.completed_at
                when sets.kind = 'any' then set_counts.first_completed_at
                when sets.kind = 'all' and set_counts.courses_completed = sets.course_count
                    then set_counts.last_completed_at
            end as set_completed_at
        from {{ learners }} as learners
        inner join {{ course_sets }} as sets
            on sets.program_id = learners.program_id and sets.path = learners.path
        left join set_counts
            on
                set_counts.program_id = learners.program_id
                and set_counts.path = learners.path
                and set_counts.user_id = learners.user_id
                and set_counts.set_id = sets.set_id
        left join some_met
            on
                some_met.program_id = learners.program_id
                and some_met.path = learners.path
                and some_met.user_id = learners.user_id
                and some_met.set_id = sets.set_id
    ),

    -- a run of `and`-ed sets completes at its latest set; a group at its earliest run
    run_instants as (
        select
            program_id, path, user_id, group_number, run_number,
            case when count(*) = count(set_completed_at) then max(set_completed_at) end
                as run_completed_at
        from set_instants
        group by all
    ),

    group_instants as (
        select
            program_id, path, user_id, group_number,
            min(run_completed_at) as group_completed_at
        from run_instants
        group by all
    ),

    -- groups are sequential: group k is done once it and every group before it are
    group_sequence as (
        select
            group_instants.*,
            case
                when count(*) over earlier = count(group_completed_at) over earlier
                    then max(group_completed_at) over earlier
            end as group_done_at,
            count(*) over learner_path as group_count
        from group_instants
        window
            earlier as (
                partition by program_id, path, user_id order by group_number
                rows between unbounded preceding and current row
            ),
            learner_path as (partition by program_id, path, user_id)
    ),

    group_opening as (
        select
            group_sequence.*,
            max(group_done_at) filter (where group_number = group_count)
                over (partition by program_id, path, user_id) as path_completed_at,
            min(group_number) filter (where group_done_at is null)
                over (partition by program_id, path, user_id) as current_group_number,
            lag(group_done_at) over (
                partition by program_id, path, user_id order by group_number
            ) as previous_group_done_at
        from group_sequence
    ),

    final as (
        select
            set_instants.*,
            run_instants.run_completed_at,
            group_opening.group_completed_at,
            group_opening.group_done_at,
            group_opening.path_completed_at,
            group_opening.current_group_number,
            -- group 1 opens with the path; group k when k-1 is done (never before the path)
            case
                when set_instants.group_number = 1 then set_instants.opened_at
                when group_opening.previous_group_done_at is not null
                    then greatest(set_instants.opened_at, group_opening.previous_group_done_at)
            end as group_opens_at
        from set_instants
        inner join run_instants using (program_id, path, user_id, group_number, run_number)
        inner join group_opening using (program_id, path, user_id, group_number)
    )

    select * from final
{% endmacro %}


{#- `instant` plus a period stored as (months, seconds): calendar months (clamped to the
    month's end by DuckDB), then seconds. Null when the instant is null. -#}
{% macro add_period(instant, months, seconds) -%}
    ({{ instant }} + to_months(coalesce({{ months }}, 0)::integer)
        + to_seconds(coalesce({{ seconds }}, 0)::bigint))
{%- endmacro %}
