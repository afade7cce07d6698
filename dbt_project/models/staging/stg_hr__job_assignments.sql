with

source as (
    select * from {{ source('hr', 'job_assignment') }}
),

renamed as (
    select
        user_id,
        job_id,
        full_name,
        start_date,
        end_date,
        organisation_id,
        position_id,
        manager_user_id,
        -- As given in the feed; null means "the manager's first job" (resolved downstream).
        manager_job_id,
        appraiser_user_id,
        time_modified,
        first_seen_order,
        first_seen_run_id
    from source
)

select * from renamed
