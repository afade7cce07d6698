{{ config(materialized='table') }}

{#-
    Certification cycles (docs/programs.md, "Certifications"): one row per (certification_id,
    user_id, cycle_number) for every assigned learner, derived from the completion history
    as of the run, so a late run loses nothing.

    A cycle is one path evaluated from one instant on:
      cycle 1          path primary, counted_from null (every completion), opened_at the
                       assignment instant; certifies at the path's completion instant c.
      after a certification n (expiry e, window w), once w <= as-of:
        recertification   counted_from w, opened_at w; certifies at c when c <= e
                          (cycle_outcome certified), else it is expired once as-of >= e.
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
    course_set_progress over every learner still certifying (step 1: all learners, on the
    primary path; step k: the learners whose certification of step k-1 opened its window by
    the as-of, on the recertification and, once expired, the primary path). The bound is
    read when the model runs, per certification, from its periods and history: expiries
    advance by at least one active period per cycle (completion_date: active - window
    period; months counted as 28 days, windows as 31), so n(t) certifications can open their
    window by t counting from the first completion (or assignment); a step needs its window
    open by the as-of, and a certification after the first needs a completion on or after
    the previous window (unless a path completes on optional sets alone): steps =
    1 + min(n(as-of), n(last completion) + 1), capped at 50. A chain also stops when a
    certification would not move the expiry later (a degenerate window = active period).
    is_chain_truncated marks a latest cycle that the cap cut short (a dbt test warns).

    Columns: certification_id, user_id, cycle_number, path, counted_from, opened_at,
    completed_at (the path's completion instant as counted, may be after closes_at),
    closes_at (recertification cycles: the expiry to recertify by), certified_at (null:
    not certified in this cycle), certification_kind (first | recertification |
    after_expiry), base_rule (due_date | completion | previous_expiry | fixed), base_at,
    expires_at, window_opens_at, cycle_outcome (certified | expired | open), assigned_at,
    due_at, is_latest_cycle, is_chain_truncated.
-#}

{%- set step_cap = 50 -%}
{#- the assigned learners: a dismissed exception is not an assignment -#}
{%- set assignments_relation = ref('int_certification_assignments') -%}
{%- set step_count = 1 -%}
{%- if execute -%}
    {%- set bound_query -%}
        with
        run_context as (
            select as_of from {{ ref('stg_learnops__run_context') }}
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
            from {{ ref('stg_rules__programs') }}
            where kind = 'certification'
        ),
        certification_courses as (
            select distinct set_courses.program_id, set_courses.course_id
            from {{ ref('stg_rules__program_course_set_courses') }} as set_courses
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
            from {{ ref('stg_rules__program_course_sets') }} as sets
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
            from {{ ref('stg_hr__course_completions') }} as completions
            inner join certification_courses
                on certification_courses.course_id = completions.course_id
            where completions.completed_at <= (select as_of from run_context)
            group by all
        ),
        first_assignment as (
            select min(assigned_at) as assigned_at from {{ assignments_relation }}
            where kind = 'certification' and not is_dismissed
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

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

certifications as materialized (
    select
        program_id,
        coalesce(expiry_method, 'expiry_date') as expiry_method,
        coalesce(active_period_months, 0) as active_months,
        coalesce(active_period_seconds, 0) as active_seconds,
        coalesce(window_period_months, 0) as window_months,
        coalesce(window_period_seconds, 0) as window_seconds,
        coalesce(min_active_period_months, 0) as min_active_months,
        coalesce(min_active_period_seconds, 0) as min_active_seconds
    from {{ ref('stg_rules__programs') }}
    where kind = 'certification'
),

assignments as (
    select program_id, user_id, assigned_at, due_at
    from {{ assignments_relation }}
    where kind = 'certification' and not is_dismissed
),

program_course_sets as (
    select * from {{ ref('stg_rules__program_course_sets') }}
),

program_set_courses as (
    select * from {{ ref('stg_rules__program_course_set_courses') }}
),

certification_sets as materialized (
    select program_course_sets.*
    from program_course_sets
    semi join certifications on certifications.program_id = program_course_sets.program_id
),

certification_set_courses as materialized (
    select program_set_courses.*
    from program_set_courses
    semi join certifications on certifications.program_id = program_set_courses.program_id
),

course_scores as (
    select * from {{ ref('stg_hr__courses') }}
),

-- the completions any step can count: certification courses of assigned learners, read once
certification_completions as materialized (
    select completions.user_id, completions.course_id, completions.completed_at
    from {{ ref('stg_hr__course_completions') }} as completions
    semi join (select distinct course_id from certification_set_courses) as courses
        on courses.course_id = completions.course_id
    semi join (select distinct user_id from assignments) as learners
        on learners.user_id = completions.user_id
),

step_1_input as materialized (
    select
        assignments.program_id,
        assignments.user_id,
        assignments.assigned_at,
        assignments.due_at,
        run_context.as_of,
        certifications.* exclude (program_id),
        0 as previous_cycle_number,
        null::timestamp as previous_expires_at,
        null::timestamp as previous_window_opens_at
    from assignments
    inner join certifications on certifications.program_id = assignments.program_id
    cross join run_context
),

{% for step in range(1, step_count + 1) %}
-- ================================================================ step {{ step }}

step_{{ step }}_learners as materialized (
    {%- if step == 1 %}
    select
        program_id, 'primary' as path, user_id,
        null::timestamp as counted_from, assigned_at as opened_at, as_of
    from step_1_input
    {%- else %}
    select
        program_id, 'recertification' as path, user_id,
        previous_window_opens_at as counted_from, previous_window_opens_at as opened_at, as_of
    from step_{{ step }}_input

    union all

    -- expired without recertifying: back on the primary path from the expiry
    select
        program_id, 'primary' as path, user_id,
        previous_window_opens_at as counted_from, previous_expires_at as opened_at, as_of
    from step_{{ step }}_input
    where previous_expires_at <= as_of
    {%- endif %}
),

step_{{ step }}_paths as materialized (
    select program_id, path, user_id, max(path_completed_at) as completed_at
    from (
        {{ course_set_progress(
            'step_' ~ step ~ '_learners', 'certification_sets', 'certification_set_courses',
            'certification_completions', 'course_scores') }}
    ) as progress
    group by all
),

step_{{ step }}_attempts as (
    {%- if step == 1 %}
    select
        input.*,
        1 as cycle_number,
        'primary' as path,
        null::timestamp as counted_from,
        input.assigned_at as opened_at,
        null::timestamp as closes_at,
        paths.completed_at,
        paths.completed_at as certified_at,
        'first' as certification_kind
    from step_1_input as input
    left join step_1_paths as paths
        on
            paths.program_id = input.program_id
            and paths.user_id = input.user_id
            and paths.path = 'primary'
    {%- else %}
    select
        input.*,
        input.previous_cycle_number + 1 as cycle_number,
        'recertification' as path,
        input.previous_window_opens_at as counted_from,
        input.previous_window_opens_at as opened_at,
        input.previous_expires_at as closes_at,
        recertification.completed_at,
        case
            when recertification.completed_at <= input.previous_expires_at
                then recertification.completed_at
        end as certified_at,
        'recertification' as certification_kind
    from step_{{ step }}_input as input
    left join step_{{ step }}_paths as recertification
        on
            recertification.program_id = input.program_id
            and recertification.user_id = input.user_id
            and recertification.path = 'recertification'

    union all

    select
        input.*,
        input.previous_cycle_number + 2 as cycle_number,
        'primary' as path,
        input.previous_window_opens_at as counted_from,
        input.previous_expires_at as opened_at,
        null::timestamp as closes_at,
        primary_path.completed_at,
        case
            when primary_path.completed_at is not null
                then greatest(primary_path.completed_at, input.previous_expires_at)
        end as certified_at,
        'after_expiry' as certification_kind
    from step_{{ step }}_input as input
    left join step_{{ step }}_paths as recertification
        on
            recertification.program_id = input.program_id
            and recertification.user_id = input.user_id
            and recertification.path = 'recertification'
    left join step_{{ step }}_paths as primary_path
        on
            primary_path.program_id = input.program_id
            and primary_path.user_id = input.user_id
            and primary_path.path = 'primary'
    where
        input.previous_expires_at <= input.as_of
        and not coalesce(recertification.completed_at <= input.previous_expires_at, false)
    {%- endif %}
),

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
            case
                when certification_kind = 'first' then coalesce(due_at, certified_at)
                else previous_expires_at
            end as fixed_start,
            {{ add_period('certified_at', 'min_active_months', 'min_active_seconds') }}
                as fixed_target
        from step_{{ step }}_attempts
        where expiry_method = 'fixed' and certified_at is not null
    )
),

step_{{ step }}_fixed_k as (
    select
        program_id,
        user_id,
        cycle_number,
        fixed_start,
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

step_{{ step }}_based as (
    select
        attempts.*,
        case
            when attempts.certified_at is null then null
            when attempts.expiry_method = 'fixed' then 'fixed'
            when attempts.expiry_method = 'completion_date' then 'completion'
            when attempts.certification_kind = 'first'
                and attempts.certified_at <= attempts.due_at then 'due_date'
            when attempts.certification_kind = 'recertification' then 'previous_expiry'
            else 'completion'
        end as base_rule,
        fixed_k.fixed_start,
        fixed_k.fixed_k
    from step_{{ step }}_attempts as attempts
    left join step_{{ step }}_fixed_k as fixed_k
        on
            fixed_k.program_id = attempts.program_id
            and fixed_k.user_id = attempts.user_id
            and fixed_k.cycle_number = attempts.cycle_number
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
        program_id,
        user_id,
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
        {{ add_period('expires_at', '-window_months', '-window_seconds') }} as window_opens_at,
        case
            when certified_at is not null then 'certified'
            when closes_at <= as_of then 'expired'
            else 'open'
        end as cycle_outcome,
        assigned_at,
        due_at,
        as_of,
        previous_expires_at,
        -- carried to the next step
        expiry_method,
        active_months,
        active_seconds,
        window_months,
        window_seconds,
        min_active_months,
        min_active_seconds
    from step_{{ step }}_expiring
),

-- learners whose new certification opened its window by the as-of (and moved the expiry)
step_{{ step + 1 }}_input as materialized (
    select
        program_id,
        user_id,
        assigned_at,
        due_at,
        as_of,
        expiry_method,
        active_months,
        active_seconds,
        window_months,
        window_seconds,
        min_active_months,
        min_active_seconds,
        cycle_number as previous_cycle_number,
        expires_at as previous_expires_at,
        window_opens_at as previous_window_opens_at
    from step_{{ step }}_cycles
    where
        certified_at is not null
        and window_opens_at <= as_of
        and coalesce(expires_at > previous_expires_at, true)
),
{% endfor %}

cycles as (
    {%- for step in range(1, step_count + 1) %}
    select * from step_{{ step }}_cycles
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

final as (
    select
        cycles.program_id as certification_id,
        cycles.user_id,
        cycles.cycle_number,
        cycles.path,
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
        cycles.assigned_at,
        cycles.due_at,
        cycles.cycle_number = max(cycles.cycle_number) over learner as is_latest_cycle,
        cycles.cycle_number = max(cycles.cycle_number) over learner
            and truncated.user_id is not null as is_chain_truncated
    from cycles
    left join step_{{ step_count + 1 }}_input as truncated
        on truncated.program_id = cycles.program_id and truncated.user_id = cycles.user_id
    window learner as (partition by cycles.program_id, cycles.user_id)
)

select * from final
