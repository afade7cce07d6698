with

source as (
    select * from {{ source('learnops', 'run_log') }}
),

renamed as (
    select
        run_id,
        as_of,
        started_at,
        finished_at,
        status,
        message,
        summary
    from source
)

select * from renamed
