
    

    create  table
      "full"."intermediate"."int_program_certification_course_sets_evaluated"
  
    
    as (
      -- Read by both status marts: a table, kept up to date run by run (only the learners whose
-- inputs changed are evaluated again).
with

run_context as (
    select * from "full"."staging"."stg_learnops__run_context"
),

certification_learners as (
    select * from "full"."main"."fct_certification_user"
),

course_sets as (
    select * from "full"."staging"."stg_rules__program_course_sets"
),

set_courses as (
    select * from "full"."staging"."stg_rules__program_course_set_courses"
),

-- read by the check for new completions and by the evaluation: not materialised (20M rows)
completions as not materialized (
    select * from "full"."staging"."stg_hr__course_completions"
),

courses as (
    select * from "full"."staging"."stg_hr__courses"
),

program_keys as (
    select
        programs.*,
        (row_number() over (order by programs.program_id))::bigint as program_key
    from "full"."staging"."stg_rules__programs" as programs
),

user_keys as (
    select * from "full"."intermediate"."int_audience_user_keys"
),

-- with the learner key of int_program_route_users, which fct_program_user joins on
learners as (
    select
        (program_keys.program_key * 4294967296 + user_keys.user_key) as learner_key,
        certification_learners.certification_id as program_id,
        certification_learners.current_path as path,
        certification_learners.user_id,
        certification_learners.current_path_counted_from as counted_from,
        certification_learners.current_path_opened_at as opened_at,
        run_context.as_of
    from certification_learners
    inner join program_keys on program_keys.program_id = certification_learners.certification_id
    inner join user_keys on user_keys.user_id = certification_learners.user_id
    cross join run_context
),

progress as (
    
    with

    -- every path with a learner keeps its template, whoever is evaluated
    template_paths as (
        select distinct program_id, path from learners
    ),

    -- what a learner's rows depend on besides their completions, per path
    set_definitions as (
        select
            program_id,
            path,
            hash(list(
                row(set_id, set_position, group_number, run_number, kind, min_courses,
                    min_score, min_time_months, min_time_seconds, course_count)
                order by set_id
            )) as sets_hash
        from course_sets
        group by program_id, path
    ),

    -- a course's score counts only in a `some` set
    course_definitions as (
        select
            set_courses.program_id,
            set_courses.path,
            hash(list(
                row(
                    set_courses.set_id,
                    set_courses.course_id,
                    case when course_sets.kind = 'some' then courses.score end
                )
                order by set_courses.set_id, set_courses.course_id
            )) as courses_hash
        from set_courses as set_courses
        inner join course_sets as course_sets
            on
                course_sets.program_id = set_courses.program_id
                and course_sets.path = set_courses.path
                and course_sets.set_id = set_courses.set_id
        left join courses as courses on courses.course_id = set_courses.course_id
        group by set_courses.program_id, set_courses.path
    ),

    definitions as (
        select
            template_paths.program_id,
            template_paths.path,
            hash(
                '7994f079b8db3095ad8100a43a8ff941',
                program_keys.program_key,
                set_definitions.sets_hash,
                course_definitions.courses_hash
            ) as definition_hash
        from template_paths
        inner join program_keys as program_keys
            on program_keys.program_id = template_paths.program_id
        left join set_definitions
            on
                set_definitions.program_id = template_paths.program_id
                and set_definitions.path = template_paths.path
        left join course_definitions
            on
                course_definitions.program_id = template_paths.program_id
                and course_definitions.path = template_paths.path
    ),

    hashed_learners as (
        select
            learners.*,
            hash(
                definitions.definition_hash,
                learners.program_id,
                learners.path,
                learners.user_id,
                learners.counted_from,
                learners.opened_at
            ) as input_hash
        from learners as learners
        inner join definitions
            on definitions.program_id = learners.program_id and definitions.path = learners.path
    ),

    evaluated_learners as (
        select * from hashed_learners
    ),

    removed_learners as (
        select null::bigint as learner_key
        where false
    ),

    evaluated_completions as (
        select * from completions
    ),

    progress as (
        
    with

    -- integer keys: one per learner (program, path, user) and one per set. keyed=true: the
    -- learners bring their own (a positive bigint, unique per row), kept in the compact rows
    keyed_learners as materialized (
        select
            learners.learner_key as learner_key,
            learners.program_id,
            learners.path,
            learners.user_id,
            learners.counted_from,
            learners.opened_at,
            learners.as_of,
            learners.input_hash
        from evaluated_learners as learners
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
        from course_sets as sets
    ),

    keyed_set_courses as materialized (
        select
            keyed_sets.program_id,
            keyed_sets.path,
            keyed_sets.set_key,
            set_courses.course_id,
            dense_rank() over (order by set_courses.course_id) as course_key
        from set_courses as set_courses
        inner join keyed_sets
            on
                keyed_sets.program_id = set_courses.program_id
                and keyed_sets.path = set_courses.path
                and keyed_sets.set_id = set_courses.set_id
    ),

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
        from evaluated_completions as completions
        inner join user_keys as user_keys on user_keys.user_id = completions.user_id
        inner join course_keys on course_keys.course_id = completions.course_id
    ),

    -- every course each learner's path lists, per set
    learner_courses as (
        select
            keyed_learners.learner_key,
            keyed_learners.user_id,
            keyed_learners.counted_from,
            keyed_learners.as_of,
            keyed_set_courses.set_key,
            keyed_set_courses.course_id,
            -- a keyed learner key is program_key x 2^32 + user_key (macros/program_keys.sql)
            (keyed_learners.learner_key % 4294967296) * 1048576 + keyed_set_courses.course_key
                as user_course_key
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
        inner join keyed_completions as completions
            on completions.user_course_key = learner_courses.user_course_key
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
        left join courses as courses on courses.course_id = course_firsts.course_id
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
        from (select distinct program_id, path from template_paths)
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
            'learner' as row_kind,
            keyed_learners.learner_key,
            keyed_learners.input_hash
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
            'templated_learner',
            templated_learners.learner_key,
            templated_learners.input_hash
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
            'template',
            null::bigint,
            null
        from template_learners
        inner join evaluated_rows on evaluated_rows.learner_key = template_learners.learner_key
        inner join keyed_sets on keyed_sets.set_key = evaluated_rows.set_key
    )

    select * from final

    ),

    final as (
        select * from progress

        union all by name

        select 'removed' as row_kind, learner_key
        from removed_learners
    )

    select * from final

),

final as (
    select * from progress
)

select * from final
    );
    
  
  