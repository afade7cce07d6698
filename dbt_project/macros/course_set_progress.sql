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

    Renders a complete query (its own `with`), to be used as a CTE body. grain='set' (the
    default): one row per (program_id, path, user_id, set_id) with the set's completion
    instant and its group's; path_completed_at, current_group_number and
    path_courses_completed (completed courses over the path's sets) repeat on every row of
    a learner. grain='learner': one row per (program_id, path, user_id) with opened_at and
    those three only, much cheaper where the sets are not needed. grain='compact': what
    both can be read from, for a table that stores it (see below); course_set_compact_rows
    and course_set_compact_learners read it back at set and learner grain. A set, group or
    path that is not complete has a null instant.

    Compact rows (row_kind): 'learner', the set-grain rows of each learner with a counted
    completion of one of the path's courses; 'templated_learner', one row per other learner
    (program_id, path, user_id, opened_at and the path's totals); 'template', the set-grain
    rows of one template learner per path (user_id null, opened at the epoch), whose
    instants are all its opening or null: a templated learner's set rows are the template's
    with that opening replaced by theirs. So a table keeps about a fifth of the set rows.

    keyed=true: `learners` bring their own learner_key, program_key x 2^32 + user_key
    (macros/program_keys.sql), kept in the compact rows, and `user_keys` names a relation
    of (user_id, user_key): the completions are then joined on one bigint per (user,
    course) instead of the two text ids.

    template_paths: a relation of (program_id, path) whose paths get a template learner,
    for a caller that evaluates only some learners but keeps every path's template
    (macros/incremental_course_set_progress.sql); by default the paths of `learners`.
    carried: names of further columns of `learners` that grain='compact' copies into its
    learner and templated_learner rows (null in template rows).

    Cost (the meaning is above). Group numbers are 1..n within a path
    (the rules loader numbers them so). Joins past the first are on integer keys numbered
    here (a learner, a set). Only learners with a counted completion of one of the path's
    courses are evaluated one by one; for every other learner each instant is either the
    path's opening or none, the same for all learners of the path, so one template learner
    per path is evaluated and its rows are copied to them, with its opening replaced by
    theirs. The sequential groups are folded per learner from one sorted list, not with
    window functions.
-#}
{% macro course_set_progress(learners, course_sets, set_courses, completions, courses, grain='set', keyed=false, user_keys=none, template_paths=none, carried=[]) %}
    with

    -- integer keys: one per learner (program, path, user) and one per set. keyed=true: the
    -- learners bring their own (a positive bigint, unique per row), kept in the compact rows
    keyed_learners as materialized (
        select
            {{ 'learners.learner_key' if keyed else 'row_number() over ()' }} as learner_key,
            learners.program_id,
            learners.path,
            learners.user_id,
            learners.counted_from,
            learners.opened_at,
            learners.as_of
            {%- for column in carried %},
            learners.{{ column }}
            {%- endfor %}
        from {{ learners }} as learners
    ),

    keyed_sets as materialized (
        select
            row_number() over () as set_key,
            sets.program_id,
            sets.path,
            sets.set_id,
            sets.set_position,
            sets.group_number,
            sets.run_number,
            sets.kind,
            sets.min_courses,
            sets.min_score,
            sets.min_time_months,
            sets.min_time_seconds,
            sets.course_count
        from {{ course_sets }} as sets
    ),

    keyed_set_courses as {{ 'materialized ' if keyed }}(
        select
            keyed_sets.program_id,
            keyed_sets.path,
            keyed_sets.set_key,
            set_courses.course_id
            {%- if keyed %},
            dense_rank() over (order by set_courses.course_id) as course_key
            {%- endif %}
        from {{ set_courses }} as set_courses
        inner join keyed_sets
            on
                keyed_sets.program_id = set_courses.program_id
                and keyed_sets.path = set_courses.path
                and keyed_sets.set_id = set_courses.set_id
    ),
{%- if keyed %}

    -- keyed: the (user, course) pair of every completion as one bigint, user_key x 2^20 +
    -- course_key (fewer than 2^20 listed courses), so that the learners' listed courses
    -- (learners x courses: 70M rows at 1M users) probe one number, not two texts
    course_keys as (
        select distinct course_id, course_key from keyed_set_courses
    ),

    keyed_completions as (
        select
            user_keys.user_key * 1048576 + course_keys.course_key as user_course_key,
            completions.completed_at
        from {{ completions }} as completions
        inner join {{ user_keys }} as user_keys on user_keys.user_id = completions.user_id
        inner join course_keys on course_keys.course_id = completions.course_id
    ),
{%- endif %}

    -- every course each learner's path lists, per set
    learner_courses as (
        select
            keyed_learners.learner_key,
            keyed_learners.user_id,
            keyed_learners.counted_from,
            keyed_learners.as_of,
            keyed_set_courses.set_key,
            keyed_set_courses.course_id
            {%- if keyed %},
            -- a keyed learner key is program_key x 2^32 + user_key (macros/program_keys.sql)
            (keyed_learners.learner_key % 4294967296) * 1048576 + keyed_set_courses.course_key
                as user_course_key
            {%- endif %}
        from keyed_learners
        inner join keyed_set_courses
            on
                keyed_set_courses.program_id = keyed_learners.program_id
                and keyed_set_courses.path = keyed_learners.path
    ),

    -- each listed course's earliest counted completion, per learner and set
    course_firsts as materialized (
        select
            learner_courses.learner_key,
            learner_courses.set_key,
            learner_courses.course_id,
            min(completions.completed_at) as completed_at
        from learner_courses
        {%- if keyed %}
        inner join keyed_completions as completions
            on completions.user_course_key = learner_courses.user_course_key
        {%- else %}
        inner join {{ completions }} as completions
            on
                completions.user_id = learner_courses.user_id
                and completions.course_id = learner_courses.course_id
        {%- endif %}
        -- one boolean, not comparisons: keeps DuckDB on the hash join (see int_audience_leaf_sets)
        where coalesce(
            completions.completed_at <= learner_courses.as_of
            and completions.completed_at >= learner_courses.counted_from,
            completions.completed_at <= learner_courses.as_of
        )
        group by learner_courses.learner_key, learner_courses.set_key, learner_courses.course_id
    ),

    -- `some` sets: the completion at which both thresholds were first met, in order
    some_running as (
        select
            course_firsts.learner_key,
            course_firsts.set_key,
            course_firsts.completed_at,
            keyed_sets.min_courses,
            keyed_sets.min_score,
            count(*) over running as courses_so_far,
            sum(coalesce(courses.score, 0)) over running as score_so_far
        from course_firsts
        inner join keyed_sets on keyed_sets.set_key = course_firsts.set_key
        left join {{ courses }} as courses on courses.course_id = course_firsts.course_id
        where keyed_sets.kind = 'some'
        window running as (
            partition by course_firsts.learner_key, course_firsts.set_key
            order by course_firsts.completed_at, course_firsts.course_id
            rows between unbounded preceding and current row
        )
    ),

    some_met as (
        select learner_key, set_key, min(completed_at) as completed_at
        from some_running
        where courses_so_far >= min_courses and score_so_far >= min_score
        group by learner_key, set_key
    ),

    set_progress as (
        select
            course_firsts.learner_key,
            course_firsts.set_key,
            count(*) as courses_completed,
            min(course_firsts.completed_at) as first_completed_at,
            max(course_firsts.completed_at) as last_completed_at,
            any_value(some_met.completed_at) as some_met_at
        from course_firsts
        left join some_met
            on
                some_met.learner_key = course_firsts.learner_key
                and some_met.set_key = course_firsts.set_key
        group by course_firsts.learner_key, course_firsts.set_key
    ),

    -- who is evaluated one by one: learners with a counted completion on their path, and
    -- one template learner per path (negative key, no completions, opened at the epoch)
    active_learners as (
        select keyed_learners.learner_key, keyed_learners.program_id, keyed_learners.path,
            keyed_learners.opened_at
        from keyed_learners
        semi join course_firsts on course_firsts.learner_key = keyed_learners.learner_key
    ),

    template_learners as (
        select
            -row_number() over () as learner_key,
            program_id,
            path,
            timestamp '1970-01-01' as opened_at
        from (select distinct program_id, path from {{ template_paths or 'keyed_learners' }})
    ),

    evaluated_learners as (
        select * from active_learners
        union all
        select * from template_learners
    ),

    set_instants as materialized (
        select
            evaluated_learners.learner_key,
            evaluated_learners.opened_at,
            keyed_sets.set_key,
            keyed_sets.group_number,
            keyed_sets.run_number,
            coalesce(set_progress.courses_completed, 0) as courses_completed,
            case
                when keyed_sets.kind = 'optional' then evaluated_learners.opened_at
                when keyed_sets.kind = 'some' and keyed_sets.min_courses = 0 and keyed_sets.min_score = 0
                    then evaluated_learners.opened_at
                when keyed_sets.kind = 'some' then set_progress.some_met_at
                when keyed_sets.kind = 'any' then set_progress.first_completed_at
                when keyed_sets.kind = 'all' and set_progress.courses_completed = keyed_sets.course_count
                    then set_progress.last_completed_at
            end as set_completed_at
        from evaluated_learners
        inner join keyed_sets
            on
                keyed_sets.program_id = evaluated_learners.program_id
                and keyed_sets.path = evaluated_learners.path
        left join set_progress
            on
                set_progress.learner_key = evaluated_learners.learner_key
                and set_progress.set_key = keyed_sets.set_key
    ),

    -- a run of `and`-ed sets completes at its latest set; a group at its earliest run
    run_instants as materialized (
        select
            learner_key,
            group_number,
            run_number,
            case when count(*) = count(set_completed_at) then max(set_completed_at) end
                as run_completed_at,
            sum(courses_completed) as run_courses_completed
        from set_instants
        group by learner_key, group_number, run_number
    ),

    group_instants as (
        select
            learner_key,
            group_number,
            min(run_completed_at) as group_completed_at,
            sum(run_courses_completed) as group_courses_completed
        from run_instants
        group by learner_key, group_number
    ),

    -- groups are sequential: group k is done once it and every group before it are
    learner_groups as (
        select
            learner_key,
            list_transform(
                list_sort(list({'group_number': group_number, 'completed_at': group_completed_at})),
                lambda g: g.completed_at
            ) as group_completions,
            sum(group_courses_completed) as path_courses_completed
        from group_instants
        group by learner_key
    ),

    learner_paths as (
        select
            learner_key,
            group_completions,
            list_transform(
                generate_series(1, len(group_completions)),
                lambda k: case
                    when list_count(group_completions[1:k]) = k then list_max(group_completions[1:k])
                end
            ) as group_dones,
            path_courses_completed
        from learner_groups
    ),

    learner_summaries as (
        select
            learner_key,
            group_dones[-1] as path_completed_at,
            cast(
                list_position(list_transform(group_dones, lambda done: done is null), true)
                as integer
            ) as current_group_number,
            path_courses_completed
        from learner_paths
    ),

    -- learners without a counted completion, with their path's template learner
    templated_learners as (
        select keyed_learners.*, template_learners.learner_key as template_key
        from keyed_learners
        anti join course_firsts on course_firsts.learner_key = keyed_learners.learner_key
        inner join template_learners
            on
                template_learners.program_id = keyed_learners.program_id
                and template_learners.path = keyed_learners.path
    ),
{%- if grain == 'learner' %}

    final as (
        select
            keyed_learners.program_id,
            keyed_learners.path,
            keyed_learners.user_id,
            keyed_learners.opened_at,
            learner_summaries.path_completed_at,
            learner_summaries.current_group_number,
            learner_summaries.path_courses_completed
        from keyed_learners
        inner join learner_summaries on learner_summaries.learner_key = keyed_learners.learner_key

        union all

        select
            templated_learners.program_id,
            templated_learners.path,
            templated_learners.user_id,
            templated_learners.opened_at,
            case when template.path_completed_at is not null then templated_learners.opened_at end,
            template.current_group_number,
            template.path_courses_completed
        from templated_learners
        inner join learner_summaries as template
            on template.learner_key = templated_learners.template_key
    )
{%- else %}

    evaluated_rows as (
        select
            set_instants.learner_key,
            set_instants.set_key,
            set_instants.courses_completed,
            set_instants.set_completed_at,
            run_instants.run_completed_at,
            learner_paths.group_completions[set_instants.group_number] as group_completed_at,
            learner_paths.group_dones[set_instants.group_number] as group_done_at,
            learner_summaries.path_completed_at,
            learner_summaries.current_group_number,
            -- group 1 opens with the path; group k when k-1 is done (never before the path)
            case
                when set_instants.group_number = 1 then set_instants.opened_at
                when learner_paths.group_dones[set_instants.group_number - 1] is not null
                    then greatest(
                        set_instants.opened_at,
                        learner_paths.group_dones[set_instants.group_number - 1]
                    )
            end as group_opens_at,
            learner_summaries.path_courses_completed
        from set_instants
        inner join run_instants
            on
                run_instants.learner_key = set_instants.learner_key
                and run_instants.group_number = set_instants.group_number
                and run_instants.run_number = set_instants.run_number
        inner join learner_paths on learner_paths.learner_key = set_instants.learner_key
        inner join learner_summaries on learner_summaries.learner_key = set_instants.learner_key
    ),

{%- if grain == 'compact' %}

    final as (
        -- one by one: every set of every learner with a counted completion
        select
            keyed_learners.program_id,
            keyed_learners.path,
            keyed_learners.user_id,
            keyed_learners.opened_at,
            keyed_sets.set_id,
            keyed_sets.set_position,
            keyed_sets.group_number,
            keyed_sets.run_number,
            keyed_sets.kind,
            keyed_sets.min_time_months,
            keyed_sets.min_time_seconds,
            evaluated_rows.courses_completed,
            evaluated_rows.set_completed_at,
            evaluated_rows.run_completed_at,
            evaluated_rows.group_completed_at,
            evaluated_rows.group_done_at,
            evaluated_rows.path_completed_at,
            evaluated_rows.current_group_number,
            evaluated_rows.group_opens_at,
            evaluated_rows.path_courses_completed,
            'learner' as row_kind{{ ',' if keyed }}
            {%- if keyed %}
            keyed_learners.learner_key
            {%- endif %}
            {%- for column in carried %},
            keyed_learners.{{ column }}
            {%- endfor %}
        from keyed_learners
        inner join evaluated_rows on evaluated_rows.learner_key = keyed_learners.learner_key
        inner join keyed_sets on keyed_sets.set_key = evaluated_rows.set_key

        union all

        -- every other learner: one row, with their path's totals; the template has the sets
        select
            templated_learners.program_id,
            templated_learners.path,
            templated_learners.user_id,
            templated_learners.opened_at,
            null, null, null, null, null, null, null, null, null, null, null, null,
            case when template.path_completed_at is not null then templated_learners.opened_at end,
            template.current_group_number,
            null,
            template.path_courses_completed,
            'templated_learner'{{ ',' if keyed }}
            {%- if keyed %}
            templated_learners.learner_key
            {%- endif %}
            {%- for column in carried %},
            templated_learners.{{ column }}
            {%- endfor %}
        from templated_learners
        inner join learner_summaries as template
            on template.learner_key = templated_learners.template_key

        union all

        -- each path's template: its instants are its opening (the epoch) or none
        select
            template_learners.program_id,
            template_learners.path,
            null,
            template_learners.opened_at,
            keyed_sets.set_id,
            keyed_sets.set_position,
            keyed_sets.group_number,
            keyed_sets.run_number,
            keyed_sets.kind,
            keyed_sets.min_time_months,
            keyed_sets.min_time_seconds,
            evaluated_rows.courses_completed,
            evaluated_rows.set_completed_at,
            evaluated_rows.run_completed_at,
            evaluated_rows.group_completed_at,
            evaluated_rows.group_done_at,
            evaluated_rows.path_completed_at,
            evaluated_rows.current_group_number,
            evaluated_rows.group_opens_at,
            evaluated_rows.path_courses_completed,
            'template'{{ ',' if keyed }}
            {%- if keyed %}
            null::bigint
            {%- endif %}
            {%- for column in carried %},
            null
            {%- endfor %}
        from template_learners
        inner join evaluated_rows on evaluated_rows.learner_key = template_learners.learner_key
        inner join keyed_sets on keyed_sets.set_key = evaluated_rows.set_key
    )
{%- else %}

    -- every learner's rows: their own, or their path's template with their opening
    learner_rows as (
        select keyed_learners.*, evaluated_rows.* exclude (learner_key)
        from keyed_learners
        inner join evaluated_rows on evaluated_rows.learner_key = keyed_learners.learner_key

        union all

        select
            templated_learners.* exclude (template_key),
            template_rows.set_key,
            template_rows.courses_completed,
            {%- for column in ['set_completed_at', 'run_completed_at', 'group_completed_at',
                               'group_done_at', 'path_completed_at'] %}
            case when template_rows.{{ column }} is not null then templated_learners.opened_at end
                as {{ column }},
            {%- endfor %}
            template_rows.current_group_number,
            case when template_rows.group_opens_at is not null then templated_learners.opened_at end
                as group_opens_at,
            template_rows.path_courses_completed
        from templated_learners
        inner join evaluated_rows as template_rows
            on template_rows.learner_key = templated_learners.template_key
    ),

    final as (
        select
            learner_rows.program_id,
            learner_rows.path,
            learner_rows.user_id,
            learner_rows.opened_at,
            keyed_sets.set_id,
            keyed_sets.set_position,
            keyed_sets.group_number,
            keyed_sets.run_number,
            keyed_sets.kind,
            keyed_sets.min_time_months,
            keyed_sets.min_time_seconds,
            learner_rows.courses_completed,
            learner_rows.set_completed_at,
            learner_rows.run_completed_at,
            learner_rows.group_completed_at,
            learner_rows.group_done_at,
            learner_rows.path_completed_at,
            learner_rows.current_group_number,
            learner_rows.group_opens_at,
            learner_rows.path_courses_completed
        from learner_rows
        inner join keyed_sets on keyed_sets.set_key = learner_rows.set_key
    )
{%- endif %}
{%- endif %}

    select * from final
{% endmacro %}


{#- `instant` plus a period stored as (months, seconds): calendar months (clamped to the
    month's end by DuckDB), then seconds. Null when the instant is null. -#}
{% macro add_period(instant, months, seconds) -%}
    ({{ instant }} + to_months(coalesce({{ months }}, 0)::integer)
        + to_seconds(coalesce({{ seconds }}, 0)::bigint))
{%- endmacro %}


{#- One row per (program_id, path, group_number) of `course_sets` (the staging relation of
    rules.program_course_set) with min_time, the longest min_time of the group's sets as a
    struct (months, seconds), periods compared as the rules loader compares them (a month is
    30.436875 days). A group's sets are due at its opening plus that period, and not due at
    all when it is zero (fct_program_course_set_user). -#}
{% macro course_set_group_min_times(course_sets) %}
    select
        program_id,
        path,
        group_number,
        arg_max(
            {'months': min_time_months, 'seconds': min_time_seconds},
            min_time_months * 30.436875 * 86400 + min_time_seconds
        ) as min_time
    from {{ course_sets }}
    group by program_id, path, group_number
{% endmacro %}


{#- The set-grain rows of a course_set_progress(grain='compact') relation (see above),
    without its learner_key and row_kind. -#}
{% macro course_set_compact_rows(compact) %}
    with

    compact_rows as (
        select * from {{ compact }}
    ),

    final as (
        -- by name: a compact table may carry columns of its own (input_hash)
        select
            {%- for column in ['program_id', 'path', 'user_id', 'opened_at', 'set_id',
                               'set_position', 'group_number', 'run_number', 'kind',
                               'min_time_months', 'min_time_seconds', 'courses_completed',
                               'set_completed_at', 'run_completed_at', 'group_completed_at',
                               'group_done_at', 'path_completed_at', 'current_group_number',
                               'group_opens_at', 'path_courses_completed'] %}
            {{ column }}{{ ',' if not loop.last }}
            {%- endfor %}
        from compact_rows
        where row_kind = 'learner'

        union all

        select
            learners.program_id,
            learners.path,
            learners.user_id,
            learners.opened_at,
            templates.set_id,
            templates.set_position,
            templates.group_number,
            templates.run_number,
            templates.kind,
            templates.min_time_months,
            templates.min_time_seconds,
            templates.courses_completed,
            {%- for column in ['set_completed_at', 'run_completed_at', 'group_completed_at',
                               'group_done_at', 'path_completed_at'] %}
            case when templates.{{ column }} is not null then learners.opened_at end as {{ column }},
            {%- endfor %}
            templates.current_group_number,
            case when templates.group_opens_at is not null then learners.opened_at end
                as group_opens_at,
            templates.path_courses_completed
        from compact_rows as learners
        inner join compact_rows as templates
            on
                templates.program_id = learners.program_id
                and templates.path = learners.path
                and templates.row_kind = 'template'
        where learners.row_kind = 'templated_learner'
    )

    select * from final
{% endmacro %}


{#- One row per learner of a course_set_progress(grain='compact') relation: program_id, path,
    user_id, opened_at, path_completed_at, current_group_number, path_courses_completed, and
    learner_key for one built with keyed=true. -#}
{% macro course_set_compact_learners(compact, keyed=false) %}
    select
        {%- if keyed %}
        learner_key,
        {%- endif %}
        program_id,
        path,
        user_id,
        opened_at,
        path_completed_at,
        current_group_number,
        path_courses_completed
    from {{ compact }}
    where row_kind = 'templated_learner' or (row_kind = 'learner' and set_position = 1)
{% endmacro %}
