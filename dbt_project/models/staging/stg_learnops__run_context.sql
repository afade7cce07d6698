with

source as (
    select * from {{ source('learnops', 'run_context') }}
),

renamed as (
    select
        run_id,
        as_of
    from source
)

select * from renamed
