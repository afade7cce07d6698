with

source as (
    select * from {{ source('learnops', 'import_file_log') }}
),

renamed as (
    select
        run_id,
        element,
        file,
        status,
        mode,
        rows_read,
        rows_accepted,
        rows_rejected,
        added,
        updated,
        removed,
        sha256
    from source
)

select * from renamed
