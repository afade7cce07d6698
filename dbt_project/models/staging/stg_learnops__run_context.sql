with

source as (
    select * from {{ source('learnops', 'run_context') }}
),

renamed as (
    select
        run_id,
        as_of,
        coalesce(is_baseline, false) as is_baseline,
        coalesce(site_timezone, 'UTC') as site_timezone,
        previous_run_id,
        previous_as_of
    from source
)

select * from renamed
