{#-
    One row per assigned learner per certification: the state as of the run
    (docs/programs.md, "Certifications", rule 4) from the latest certification of the
    learner's cycle chain (int_certification_cycles), and the current path (the latest
    cycle) whose course-set progress fct_program_user shows.

    never certified -> assigned; as-of < window_opens_at -> certified;
    window_opens_at <= as-of < expires_at -> window_open; as-of >= expires_at -> expired.
    certified_at, window_opens_at and expires_at are those of the latest certification, also
    once it expired (null only while assigned).
-#}

with

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

cycles as (
    select * from {{ ref('int_certification_cycles') }}
),

latest_cycles as (
    select * from cycles
    where is_latest_cycle
),

latest_certifications as (
    select
        certification_id,
        user_id,
        count(*) as certification_count,
        arg_max(cycle_number, cycle_number) as cycle_number,
        arg_max(certified_at, cycle_number) as certified_at,
        arg_max(certification_kind, cycle_number) as certification_kind,
        arg_max(base_rule, cycle_number) as base_rule,
        arg_max(base_at, cycle_number) as base_at,
        arg_max(window_opens_at, cycle_number) as window_opens_at,
        arg_max(expires_at, cycle_number) as expires_at
    from cycles
    where certified_at is not null
    group by all
),

final as (
    select
        latest_cycles.certification_id,
        latest_cycles.user_id,
        case
            when latest_certifications.certified_at is null then 'assigned'
            when run_context.as_of < latest_certifications.window_opens_at then 'certified'
            when run_context.as_of < latest_certifications.expires_at then 'window_open'
            else 'expired'
        end as state,
        latest_certifications.certified_at,
        latest_certifications.window_opens_at,
        latest_certifications.expires_at,
        latest_certifications.base_rule,
        latest_certifications.base_at,
        latest_certifications.certification_kind,
        coalesce(latest_certifications.certification_count, 0) as certification_count,
        latest_certifications.cycle_number as certified_cycle_number,
        latest_cycles.cycle_number,
        latest_cycles.path as current_path,
        latest_cycles.counted_from as current_path_counted_from,
        latest_cycles.opened_at as current_path_opened_at,
        latest_cycles.completed_at as current_path_completed_at,
        latest_cycles.assigned_at,
        latest_cycles.due_at,
        latest_cycles.is_chain_truncated
    from latest_cycles
    left join latest_certifications
        on
            latest_certifications.certification_id = latest_cycles.certification_id
            and latest_certifications.user_id = latest_cycles.user_id
    cross join run_context
)

select * from final
