with

source as (
    select * from {{ source('learnops', 'report_delivery_log') }}
),

renamed as (
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
    from source
)

select * from renamed
