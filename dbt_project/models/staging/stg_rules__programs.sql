with

source as (
    select * from {{ source('rules', 'program') }}
),

renamed as (
    select
        program_id,
        name,
        kind,
        active_period_months,
        active_period_seconds,
        window_period_months,
        window_period_seconds,
        min_active_period_months,
        min_active_period_seconds,
        expiry_method,
        minimum_time_seconds,
        minimum_time_months,
        exception_default,
        is_broken,
        broken_reason,
        broken_since_run_id,
        definition,
        source_file,
        source_line
    from source
)

select * from renamed
