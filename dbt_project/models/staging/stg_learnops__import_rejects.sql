with

source as (
    select * from {{ source('learnops', 'import_reject_log') }}
),

renamed as (
    select
        run_id,
        element,
        file,
        row_number,
        record_id,
        reason_code,
        reason,
        raw
    from source
)

select * from renamed
