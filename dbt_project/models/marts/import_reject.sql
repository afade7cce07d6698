-- A view over the bookkeeping table, like pipeline_run: rows written after the build (a
-- failed run's record) stay visible.
{{ config(materialized='view') }}

with

import_rejects as (
    select * from {{ ref('stg_learnops__import_rejects') }}
),

final as (
    select
        run_id,
        element,
        file,
        row_number,
        record_id,
        reason_code,
        reason,
        raw
    from import_rejects
)

select * from final
