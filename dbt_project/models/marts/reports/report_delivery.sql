-- A view over learnops.report_delivery_log, like pipeline_run: the report sender folds its
-- ledger into that table after each send (flows/reports/ledger.py), and readers must see it.
{{ config(materialized='view') }}

with

deliveries as (
    select * from {{ ref('stg_learnops__report_deliveries') }}
),

final as (
    select
        report_id,
        recipient_email,
        period_start,
        status,
        row_count,
        sent_at,
        message_id,
        attempts,
        last_error
    from deliveries
)

select * from final
