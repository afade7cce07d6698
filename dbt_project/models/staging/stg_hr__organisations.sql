with

source as (
    select * from {{ source('hr', 'organisation') }}
),

renamed as (
    select
        organisation_id,
        name,
        short_name,
        description,
        framework_id,
        parent_id,
        type_id,
        time_modified,
        first_seen_run_id
    from source
)

select * from renamed
