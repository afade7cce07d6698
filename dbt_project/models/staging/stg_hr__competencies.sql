with

source as (
    select * from {{ source('hr', 'competency') }}
),

renamed as (
    select
        competency_id,
        name,
        short_name,
        description,
        framework_id,
        parent_id,
        type_id,
        aggregation_method,
        time_modified,
        first_seen_run_id
    from source
)

select * from renamed
