-- A view, not a table: the flow updates the run's status in learnops.run_log after the
-- build, and readers must see that final status.
{{ config(materialized='view') }}

with

runs as (
    select * from {{ ref('stg_learnops__runs') }}
),

final as (
    select
        run_id,
        as_of,
        started_at,
        finished_at,
        status,
        message,
        summary
    from runs
)

select * from final
