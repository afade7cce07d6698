{{ config(materialized='table') }}

{#-
    Certification cycles (docs/programs.md, "Certifications"): one row per (certification_id,
    user_id, cycle_number) for every assigned learner (int_program_assignments, not
    dismissed), derived from the completion history as of the run, so a late run loses
    nothing.

    A cycle is one path evaluated from one instant on:
      cycle 1          path primary, counted_from null (every completion), opened_at the
                       assignment instant: the assignments' own course_set_progress
                       (int_program_assignments.completed_at); certifies at that instant c.
      after a certification (expiry e, window w), once w <= as-of:
        recertification   counted_from w, opened_at w, completions up to e: certifies at
                          the path's instant c <= e (cycle_outcome certified), else it is
                          expired once as-of >= e (completed_at stays null: later
                          completions are not read for this path).
        then, only if it did not certify and as-of >= e, a primary cycle: counted_from w,
                          opened_at e, certifying at greatest(e, the path's instant).
    A certification's base, expiry and window follow expiry_method (base_rule names the
    rule used): completion_date: base = c; expiry_date: first certification the due date
    when c <= due (else c), a recertification in the window the previous expiry, after
    expiry c; fixed: expires_at = the first start + k x active period (k any integer, counted
    from start so month-end clamping does not drift) at or after c + min_active_period, with
    start = the previous expiry, or for a first certification the due date, else c; base_at
    = start + (k - 1) x active period. expires_at = base_at + active period (fixed: as
    above), window_opens_at = expires_at - window period.

    The chain is built in a bounded number of steps, each one set-based pass of
    course_set_progress over every learner still certifying (step 1: cycle 1 for everyone;
    step k: the learners whose certification of step k-1 opened its window by the as-of, on
    the recertification and, once expired, the primary path). The steps run on integer
    keys (certification, user, course; path 1 = primary, 2 = recertification; set id = set
    position). The bound is read when the model runs, per certification, from its periods
    and history: expiries advance by at least one active period per cycle (completion_date:
    active - window period; months counted as 28 days, windows as 31), so n(t)
    certifications can open their window by t counting from the first completion (or
    assignment); a step needs its window open by the as-of, and a certification after the
    first needs a completion on or after the previous window (unless a path completes on
    optional sets alone): steps = 1 + min(n(as-of), n(last completion) + 1), capped at 50.
    A chain also stops when a certification would not move the expiry later (a degenerate
    window = active period). is_chain_truncated marks a latest cycle that the cap cut short
    (a dbt test on fct_certification_user warns).

    Columns: certification_id, user_id, cycle_number, path, counted_from, opened_at,
    completed_at (the path's completion instant as counted), closes_at (recertification
    cycles: the expiry to recertify by), certified_at (null: not certified in this cycle),
    certification_kind (first | recertification | after_expiry), base_rule (due_date |
    completion | previous_expiry | fixed), base_at, expires_at, window_opens_at,
    cycle_outcome (certified | expired | open), certification_count (certifications up to
    this cycle), last_certified_cycle_number (the latest certified cycle up to this one),
    is_latest_cycle, is_chain_truncated.
-#}

{%- set step_cap = 50 -%}
{%- set as_of = run_as_of() -%}
{#- the assigned learners: a dismissed exception is not an assignment -#}
{%- set assignments_relation = ref('int_program_assignments') -%}
{#- set here, not where the steps use them: dbt sees the refs when it parses (one step) -#}
{%- set programs_relation = ref('stg_rules__programs') -%}
{%- set course_sets_relation = ref('stg_rules__program_course_sets') -%}
{%- set set_courses_relation = ref('stg_rules__program_course_set_courses') -%}
{%- set completions_relation = ref('stg_hr__course_completions') -%}
{%- set courses_relation = ref('stg_hr__courses') -%}
{%- set step_count = 1 -%}
{%- if execute -%}
    {%- set bound_query -%}
        with
        run_context as (
            select {{ as_of }} as as_of
        ),
        certifications as (
            select
                program_id,
                coalesce(expiry_method, 'expiry_date') as expiry_method,
                coalesce(active_period_months, 0) * 28 * 86400
                    + coalesce(active_period_seconds, 0) as active_short,
                coalesce(window_period_months, 0) * 31 * 86400
                    + coalesce(window_period_seconds, 0) as window_long,
                coalesce(min_active_period_months, 0) * 28 * 86400
                    + coalesce(min_active_period_seconds, 0) as min_active_short
            from {{ programs_relation }}
            where kind = 'certification'
        ),
        certification_courses as (
            select distinct set_courses.program_id, set_courses.course_id
            from {{ set_courses_relation }} as set_courses
            semi join certifications on certifications.program_id = set_courses.program_id
        ),
        -- a path that completes without any completion (optional sets) can certify forever
        instant_runs as (
            select
                sets.program_id, sets.path, sets.group_number,
                bool_and(
                    sets.kind = 'optional'
                    or (sets.kind = 'some' and sets.min_courses = 0 and sets.min_score = 0)
                ) as is_instant
            from {{ course_sets_relation }} as sets
            group by sets.program_id, sets.path, sets.group_number, sets.run_number
        ),
        instant_certifications as (
            select distinct program_id
            from (
                select program_id, path
                from (
                    select program_id, path, group_number, bool_or(is_instant) as is_instant
                    from instant_runs
                    group by all
                )
                group by all
                having bool_and(is_instant)
            )
        ),
        history as (
            select
                certification_courses.program_id,
                min(completions.completed_at) as first_completed_at,
                max(completions.completed_at) as last_completed_at
            from {{ completions_relation }} as completions
            inner join certification_courses
                on certification_courses.course_id = completions.course_id
            where completions.completed_at <= (select as_of from run_context)
            group by all
        ),
        first_assignment as (
            select min(assigned_at) as assigned_at from {{ assignments_relation }}
            where is_assigned and kind = 'certification' and not is_dismissed
        ),
        -- n(t): how many certifications k can have their window open (w_k) by t, with
        -- w_k >= first + E + (k - 1) x advance - window; E and the advance counted short
        shapes as (
            select
                certifications.program_id,
                instant_certifications.program_id is not null as is_instant,
                epoch(least(history.first_completed_at, first_assignment.assigned_at))
                    as first_epoch,
                epoch(run_context.as_of) as as_of_epoch,
                epoch(history.last_completed_at) as last_epoch,
                certifications.window_long
                    - case when certifications.expiry_method = 'fixed'
                        then least(certifications.min_active_short, certifications.active_short)
                        else certifications.active_short end as offset_seconds,
                case when certifications.expiry_method = 'completion_date'
                    then certifications.active_short - certifications.window_long
                    else certifications.active_short end as advance_seconds
            from certifications
            left join history on history.program_id = certifications.program_id
            left join instant_certifications
                on instant_certifications.program_id = certifications.program_id
            cross join first_assignment
            cross join run_context
        ),
        bounds as (
            select
                case
                    when first_epoch is null then 1
                    when advance_seconds <= 0 then {{ step_cap }}
                    -- steps = 1 + min(n(as-of), n(last completion) + 1)
                    else 1 + least(
                        greatest(
                            floor((as_of_epoch - first_epoch + offset_seconds) / advance_seconds)
                                + 1,
                            0
                        ),
                        case when not is_instant then greatest(
                            floor(
                                (coalesce(last_epoch, first_epoch) - first_epoch + offset_seconds)
                                / advance_seconds
                            ) + 1,
                            0
                        ) + 1 end
                    )
                end as steps
            from shapes
        )
        select least(coalesce(max(steps), 1), {{ step_cap }})::integer from bounds
    {%- endset -%}
    {%- set step_count = run_query(bound_query).rows[0][0] | int -%}
    {%- do log('int_certification_cycles: ' ~ step_count ~ ' steps', info=false) -%}
{%- endif %}

with

-- integer keys: every step groups, joins and partitions on them
certifications as materialized (
    select
        program_id as certification_id,
        (row_number() over (order by program_id))::integer as certification_key,
        coalesce(expiry_method, 'expiry_date') as expiry_method,
        coalesce(active_period_months, 0) as active_months,
        coalesce(active_period_seconds, 0) as active_seconds,
        coalesce(window_period_months, 0) as window_months,
        coalesce(window_period_seconds, 0) as window_seconds,
        coalesce(min_active_period_months, 0) as min_active_months,
        coalesce(min_active_period_seconds, 0) as min_active_seconds
    from {{ programs_relation }}
    where kind = 'certification'
),

-- cycle 1 is the primary path over all history from the assignment: the assignments'
-- course-set progress (course_set_progress, counted_from null, opened_at = assigned_at)
assignments as (
    select
        program_id as certification_id,
        user_id,
        assigned_at,
        due_at,
        completed_at as primary_completed_at
    from {{ assignments_relation }}
    where is_assigned and kind = 'certification' and not is_dismissed
),

{% for step in range(1, step_count + 1) %}
-- ================================================================ step {{ step }}
{%- if step == 1 %}

step_1_outcomes as (
    select
        certifications.*,
        assignments.user_id,
        null::integer as learner_key,
        0 as previous_cycle_number,
        0 as previous_certification_count,
        null::timestamp as previous_expires_at,
        null::timestamp as previous_window_opens_at,
        assignments.assigned_at,
        assignments.due_at,
        assignments.primary_completed_at,
        null::timestamp as recertification_completed_at
    from assignments
    inner join certifications on certifications.certification_id = assignments.certification_id
),

step_1_attempts as (
    select
        *,
        1 as cycle_number,
        1 as path,
        null::timestamp as counted_from,
        assigned_at as opened_at,
        null::timestamp as closes_at,
        primary_completed_at as completed_at,
        primary_completed_at as certified_at,
        'first' as certification_kind,
        true as is_last_in_step
    from step_1_outcomes
),
{%- else %}
{%- if step == 2 %}

-- the learners whose window opens at least once, and what the steps read of them, on
-- integer keys. course_set_progress runs with program_id = certification_key, path 1 =
-- primary and 2 = recertification, set_id = set_position, course_id = course_key, and
-- user_id = one key per learner and path (2 x learner_key - 1 primary, 2 x learner_key
-- recertification), whose completions are only those of the path's courses: its first
-- join, on user_id, then matches only what it counts
learner_keys as materialized (
    select certification_key, user_id, (row_number() over ())::integer as learner_key
    from step_2_candidates
),

course_keys as materialized (
    select course_id, (row_number() over (order by course_id))::integer as course_key
    from (
        select distinct course_id from {{ set_courses_relation }}
        semi join certifications on certifications.certification_id = program_id
    )
),

recertification_sets as materialized (
    select
        certifications.certification_key as program_id,
        case sets.path when 'primary' then 1 else 2 end as path,
        sets.set_position as set_id,
        sets.* exclude (program_id, path, set_id)
    from {{ course_sets_relation }} as sets
    inner join certifications on certifications.certification_id = sets.program_id
),

recertification_set_courses as materialized (
    select
        certifications.certification_key as program_id,
        case set_courses.path when 'primary' then 1 else 2 end as path,
        sets.set_position as set_id,
        course_keys.course_key as course_id
    from {{ set_courses_relation }} as set_courses
    inner join certifications on certifications.certification_id = set_courses.program_id
    inner join {{ course_sets_relation }} as sets
        on
            sets.program_id = set_courses.program_id
            and sets.path = set_courses.path
            and sets.set_id = set_courses.set_id
    inner join course_keys on course_keys.course_id = set_courses.course_id
),

recertification_courses as materialized (
    select course_keys.course_key as course_id, courses.score
    from {{ courses_relation }} as courses
    inner join course_keys on course_keys.course_id = courses.course_id
),

course_paths as (
    select distinct program_id as certification_key, path, course_id as course_key
    from recertification_set_courses
),

-- materialised first: joined to learner_keys on the user alone, every completion would
-- meet each of the user's certifications. Only the completions of users with a window
-- (a semi join, before each completion meets every path listing its course)
path_completions as materialized (
    select
        completions.user_id,
        course_paths.certification_key,
        course_paths.path,
        course_paths.course_key,
        completions.completed_at
    from {{ completions_relation }} as completions
    semi join learner_keys on learner_keys.user_id = completions.user_id
    inner join course_keys on course_keys.course_id = completions.course_id
    inner join course_paths on course_paths.course_key = course_keys.course_key
    where completions.completed_at <= {{ as_of }}
),

recertification_completions as materialized (
    select
        2 * learner_keys.learner_key - (path_completions.path = 1)::integer as user_id,
        path_completions.course_key as course_id,
        path_completions.completed_at
    from path_completions
    inner join learner_keys
        on
            learner_keys.user_id = path_completions.user_id
            and learner_keys.certification_key = path_completions.certification_key
),

step_2_input as materialized (
    select candidates.* exclude (learner_key), learner_keys.learner_key
    from step_2_candidates as candidates
    inner join learner_keys
        on
            learner_keys.certification_key = candidates.certification_key
            and learner_keys.user_id = candidates.user_id
),
{%- endif %}

step_{{ step }}_learners as materialized (
    -- the recertification path only matters until the expiry: completions after it are not
    -- read (the path's instant when it is at or before the expiry is the same)
    select
        certification_key as program_id, 2 as path, 2 * learner_key as user_id,
        previous_window_opens_at as counted_from, previous_window_opens_at as opened_at,
        least(previous_expires_at, {{ as_of }}) as as_of
    from step_{{ step }}_input

    union all

    -- expired without recertifying: back on the primary path from the expiry
    select
        certification_key as program_id, 1 as path, 2 * learner_key - 1 as user_id,
        previous_window_opens_at as counted_from, previous_expires_at as opened_at,
        {{ as_of }} as as_of
    from step_{{ step }}_input
    where previous_expires_at <= {{ as_of }}
),

-- no step counts a completion before its earliest window
step_{{ step }}_completions as (
    select * from recertification_completions
    where completed_at >= (select min(counted_from) from step_{{ step }}_learners)
),

step_{{ step }}_paths as materialized (
    select
        (user_id + 1) // 2 as learner_key,
        max(path_completed_at) filter (where path = 1) as primary_completed_at,
        max(path_completed_at) filter (where path = 2) as recertification_completed_at
    from (
        {{ course_set_progress(
            'step_' ~ step ~ '_learners', 'recertification_sets', 'recertification_set_courses',
            'step_' ~ step ~ '_completions', 'recertification_courses') }}
    ) as progress
    group by all
),

step_{{ step }}_outcomes as (
    select
        certifications.*,
        input.user_id,
        input.learner_key,
        input.previous_cycle_number,
        input.previous_certification_count,
        input.previous_expires_at,
        input.previous_window_opens_at,
        null::timestamp as assigned_at,
        null::timestamp as due_at,
        paths.primary_completed_at,
        paths.recertification_completed_at
    from step_{{ step }}_input as input
    inner join certifications on certifications.certification_key = input.certification_key
    left join step_{{ step }}_paths as paths
        on paths.learner_key = input.learner_key
),

step_{{ step }}_attempts as (
    select
        *,
        previous_cycle_number + 1 as cycle_number,
        2 as path,
        previous_window_opens_at as counted_from,
        previous_window_opens_at as opened_at,
        previous_expires_at as closes_at,
        recertification_completed_at as completed_at,
        case
            when recertification_completed_at <= previous_expires_at
                then recertification_completed_at
        end as certified_at,
        'recertification' as certification_kind,
        coalesce(recertification_completed_at <= previous_expires_at, false)
            or {{ as_of }} < previous_expires_at as is_last_in_step
    from step_{{ step }}_outcomes

    union all

    select
        *,
        previous_cycle_number + 2 as cycle_number,
        1 as path,
        previous_window_opens_at as counted_from,
        previous_expires_at as opened_at,
        null::timestamp as closes_at,
        primary_completed_at as completed_at,
        case
            when primary_completed_at is not null
                then greatest(primary_completed_at, previous_expires_at)
        end as certified_at,
        'after_expiry' as certification_kind,
        true as is_last_in_step
    from step_{{ step }}_outcomes
    where
        previous_expires_at <= {{ as_of }}
        and not coalesce(recertification_completed_at <= previous_expires_at, false)
),
{%- endif %}

-- fixed: the first start + k x active period at or after certified_at + min_active_period
step_{{ step }}_fixed as (
    select
        *,
        floor(
            (epoch(fixed_target) - epoch(fixed_start))
            / nullif(active_months * 2629746 + active_seconds, 0)
        )::bigint as fixed_k_estimate
    from (
        select
            *,
            case when expiry_method = 'fixed' and certified_at is not null then
                case
                    when certification_kind = 'first' then coalesce(due_at, certified_at)
                    else previous_expires_at
                end
            end as fixed_start,
            case when expiry_method = 'fixed' then
                {{ add_period('certified_at', 'min_active_months', 'min_active_seconds') }}
            end as fixed_target
        from step_{{ step }}_attempts
    )
),

step_{{ step }}_based as (
    select
        *,
        case
            when certified_at is null then null
            when expiry_method = 'fixed' then 'fixed'
            when expiry_method = 'completion_date' then 'completion'
            when certification_kind = 'first' and certified_at <= due_at then 'due_date'
            when certification_kind = 'recertification' then 'previous_expiry'
            else 'completion'
        end as base_rule,
        -- the estimate is off by at most one (calendar months are 28 to 31 days)
        least(
            {%- for offset in [-1, 0, 1, 2] %}
            case
                when {{ add_period(
                    'fixed_start',
                    '(fixed_k_estimate + ' ~ offset ~ ') * active_months',
                    '(fixed_k_estimate + ' ~ offset ~ ') * active_seconds') }} >= fixed_target
                    then fixed_k_estimate + {{ offset }}
            end{{ ',' if not loop.last }}
            {%- endfor %}
        ) as fixed_k
    from step_{{ step }}_fixed
),

step_{{ step }}_expiring as (
    select
        *,
        case base_rule
            when 'fixed' then {{ add_period(
                'fixed_start', '(fixed_k - 1) * active_months', '(fixed_k - 1) * active_seconds') }}
            when 'due_date' then due_at
            when 'previous_expiry' then previous_expires_at
            when 'completion' then certified_at
        end as base_at,
        case base_rule
            when 'fixed' then {{ add_period(
                'fixed_start', 'fixed_k * active_months', 'fixed_k * active_seconds') }}
            when 'due_date' then {{ add_period('due_at', 'active_months', 'active_seconds') }}
            when 'previous_expiry'
                then {{ add_period('previous_expires_at', 'active_months', 'active_seconds') }}
            when 'completion'
                then {{ add_period('certified_at', 'active_months', 'active_seconds') }}
        end as expires_at
    from step_{{ step }}_based
),

step_{{ step }}_cycles as materialized (
    select
        * exclude (previous_expires_at),
        -- the next step takes the learner on: this certification's window opened by the
        -- as-of, and it moved the expiry later
        coalesce(
            certified_at is not null
            and window_opens_at <= {{ as_of }}
            and coalesce(expires_at > previous_expires_at, true),
            false
        ) as is_continuing
    from (
        select
            certification_key,
            user_id,
            learner_key,
            cycle_number,
            path,
            counted_from,
            opened_at,
            completed_at,
            closes_at,
            certified_at,
            case when certified_at is not null then certification_kind end as certification_kind,
            base_rule,
            base_at,
            expires_at,
            {{ add_period('expires_at', '-window_months', '-window_seconds') }}
                as window_opens_at,
            case
                when certified_at is not null then 'certified'
                when closes_at <= {{ as_of }} then 'expired'
                else 'open'
            end as cycle_outcome,
            previous_expires_at,
            previous_certification_count + (certified_at is not null)::integer
                as certification_count,
            case
                when certified_at is not null then cycle_number
                when previous_cycle_number > 0 then previous_cycle_number
            end as last_certified_cycle_number,
            is_last_in_step
        from step_{{ step }}_expiring
    )
),

{%- set next_input = 'step_2_candidates' if step == 1 else 'step_' ~ (step + 1) ~ '_input' %}

{{ next_input }} as materialized (
    select
        certification_key,
        user_id,
        learner_key,
        cycle_number as previous_cycle_number,
        certification_count as previous_certification_count,
        expires_at as previous_expires_at,
        window_opens_at as previous_window_opens_at
    from step_{{ step }}_cycles
    where is_continuing
),
{% endfor %}

cycles as (
    {%- for step in range(1, step_count + 1) %}
    select
        *,
        is_last_in_step
        {%- if not loop.last %} and not is_continuing{% endif %} as is_latest_cycle,
        {% if loop.last %}is_last_in_step and is_continuing{% else %}false{% endif %}
            as is_chain_truncated
    from step_{{ step }}_cycles
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

final as (
    select
        certifications.certification_id,
        cycles.user_id,
        cycles.cycle_number,
        case cycles.path when 1 then 'primary' else 'recertification' end as path,
        cycles.counted_from,
        cycles.opened_at,
        cycles.completed_at,
        cycles.closes_at,
        cycles.certified_at,
        cycles.certification_kind,
        cycles.base_rule,
        cycles.base_at,
        cycles.expires_at,
        cycles.window_opens_at,
        cycles.cycle_outcome,
        cycles.certification_count,
        cycles.last_certified_cycle_number,
        cycles.is_latest_cycle,
        cycles.is_chain_truncated
    from cycles
    inner join certifications on certifications.certification_key = cycles.certification_key
)

select * from final
