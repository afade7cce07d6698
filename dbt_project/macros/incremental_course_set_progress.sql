{#-
    course_set_progress(grain='compact', keyed=true) kept up to date run by run, for an
    incremental model (delete+insert on learner_key) that stores it: only the learners whose
    inputs changed are evaluated again (docs/programs.md, "Build").

    `learners`: one row per learner to evaluate, the columns of course_set_progress's
    `learners` with its learner_key (macros/program_keys.sql). `program_keys` names a
    relation of (program_id, program_key); the others are course_set_progress's.

    A learner's rows depend only on their own row of `learners` (program, path, user,
    counted_from, opened_at), their completions up to the as-of, their path's definition
    (its course sets, their courses, the scores of those in a `some` set), their program key
    and the evaluation's SQL. Every stored row carries input_hash, a hash of all but the
    completions, and a run evaluates again:
    * the learners whose input_hash is new or differs from the stored one;
    * the learners with a completion of one of their program's courses that is new in this
      run (first_seen_run_id), or that falls in (previous as-of, as-of]: it counts now and
      did not when the stored rows were made. Without a previous run, every completion.
    Renders the rows to insert: those learners' rows (with input_hash), every path's
    template (evaluated every run, a few rows each; input_hash null), and a 'removed' row
    (learner_key only) per stored learner no longer in `learners`, so that delete+insert
    deletes their rows. The model's hooks finish the job: incremental_course_set_pre_hook()
    and incremental_course_set_post_hook().
-#}
{% macro incremental_course_set_progress(learners, course_sets, set_courses, completions, courses, user_keys, program_keys) %}
    {%- set progress_sql = course_set_progress(
        'evaluated_learners', course_sets, set_courses, 'evaluated_completions', courses,
        grain='compact', keyed=true, user_keys=user_keys, template_paths='template_paths',
        carried=['input_hash']
    ) %}
    {%- set stored_columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list
        if is_incremental() else [] %}
    with

    -- every path with a learner keeps its template, whoever is evaluated
    template_paths as (
        select distinct program_id, path from {{ learners }}
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
        from {{ course_sets }}
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
        from {{ set_courses }} as set_courses
        inner join {{ course_sets }} as course_sets
            on
                course_sets.program_id = set_courses.program_id
                and course_sets.path = set_courses.path
                and course_sets.set_id = set_courses.set_id
        left join {{ courses }} as courses on courses.course_id = set_courses.course_id
        group by set_courses.program_id, set_courses.path
    ),

    definitions as (
        select
            template_paths.program_id,
            template_paths.path,
            hash(
                '{{ local_md5(progress_sql) }}',
                program_keys.program_key,
                set_definitions.sets_hash,
                course_definitions.courses_hash
            ) as definition_hash
        from template_paths
        inner join {{ program_keys }} as program_keys
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
        from {{ learners }} as learners
        inner join definitions
            on definitions.program_id = learners.program_id and definitions.path = learners.path
    ),
{%- if is_incremental() %}

    -- one stored row per learner (a table made before input_hash existed: none match)
    stored_learners as (
        select
            learner_key,
            {{ 'input_hash' if 'input_hash' in stored_columns else 'null::ubigint as input_hash' }}
        from {{ this }}
        where row_kind = 'templated_learner' or (row_kind = 'learner' and set_position = 1)
    ),

    -- completions that count now and did not when the stored rows were made
    fresh_completions as (
        select completions.user_id, completions.course_id
        from {{ completions }} as completions
        cross join {{ ref('stg_learnops__run_context') }} as run_context
        where
            completions.completed_at <= run_context.as_of
            and (
                run_context.previous_as_of is null
                or completions.completed_at > run_context.previous_as_of
                or completions.first_seen_run_id = run_context.run_id
            )
    ),

    fresh_learners as (
        select distinct
            {{ learner_key('program_keys.program_key', 'user_keys.user_key') }} as learner_key
        from fresh_completions
        inner join (select distinct program_id, course_id from {{ set_courses }}) as set_courses
            on set_courses.course_id = fresh_completions.course_id
        inner join {{ program_keys }} as program_keys
            on program_keys.program_id = set_courses.program_id
        inner join {{ user_keys }} as user_keys on user_keys.user_id = fresh_completions.user_id
    ),

    evaluated_learners as (
        select hashed_learners.*
        from hashed_learners
        left join stored_learners on stored_learners.learner_key = hashed_learners.learner_key
        where
            stored_learners.input_hash is distinct from hashed_learners.input_hash
            or hashed_learners.learner_key in (select learner_key from fresh_learners)
    ),

    removed_learners as (
        select stored_learners.learner_key
        from stored_learners
        anti join {{ learners }} as learners on learners.learner_key = stored_learners.learner_key
    ),

    -- the evaluated learners' completions only
    evaluated_completions as (
        select completions.*
        from {{ completions }} as completions
        semi join evaluated_learners on evaluated_learners.user_id = completions.user_id
    ),
{%- else %}

    evaluated_learners as (
        select * from hashed_learners
    ),

    removed_learners as (
        select null::bigint as learner_key
        where false
    ),

    evaluated_completions as (
        select * from {{ completions }}
    ),
{%- endif %}

    progress as (
        {{ progress_sql }}
    ),

    final as (
        select * from progress

        union all by name

        select 'removed' as row_kind, learner_key
        from removed_learners
    )

    select * from final
{% endmacro %}


{#- The hooks of a model built with incremental_course_set_progress: before, drop every
    stored template (each run writes them all again); after, drop the 'removed' rows, whose
    only use was to delete a gone learner's rows. Both inside the model's transaction. -#}
{% macro incremental_course_set_pre_hook() %}
    {% if is_incremental() %}
    delete from {{ this }} where row_kind = 'template'
    {% endif %}
{% endmacro %}

{% macro incremental_course_set_post_hook() %}
    delete from {{ this }} where row_kind = 'removed'
{% endmacro %}
