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

-- read twice, each time only what it needs (a CTE of every cycle would be materialised)
latest_cycles as (
    select * from {{ ref('int_certification_cycles') }}
    where is_latest_cycle
),

certified_cycles as (
    select
        certification_id,
        user_id,
        cycle_number,
        certified_at,
        certification_kind,
        base_rule,
        base_at,
        window_opens_at,
        expires_at
    from {{ ref('int_certification_cycles') }}
    where certified_at is not null
),

final as (
    select
        latest_cycles.certification_id,
        latest_cycles.user_id,
        case
            when certified.certified_at is null then 'assigned'
            when run_context.as_of < certified.window_opens_at then 'certified'
            when run_context.as_of < certified.expires_at then 'window_open'
            else 'expired'
        end as state,
        certified.certified_at,
        certified.window_opens_at,
        certified.expires_at,
        certified.base_rule,
        certified.base_at,
        certified.certification_kind,
        latest_cycles.certification_count,
        certified.cycle_number as certified_cycle_number,
        latest_cycles.cycle_number,
        latest_cycles.path as current_path,
        latest_cycles.counted_from as current_path_counted_from,
        latest_cycles.opened_at as current_path_opened_at,
        latest_cycles.completed_at as current_path_completed_at,
        latest_cycles.is_chain_truncated
    from latest_cycles
    -- the latest certification: the latest cycle itself, or the one it follows
    left join certified_cycles as certified
        on
            certified.certification_id = latest_cycles.certification_id
            and certified.user_id = latest_cycles.user_id
            and certified.cycle_number = latest_cycles.last_certified_cycle_number
    cross join run_context
)

select * from final
