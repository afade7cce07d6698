with

job_assignments as (
    select * from {{ ref('int_job_assignments_resolved') }}
),

final as (
    select
        user_id,
        job_id,
        full_name,
        organisation_id,
        position_id,
        manager_user_id,
        manager_job_id,
        is_manager_job_default,
        appraiser_user_id,
        start_date,
        end_date,
        is_first_job
    from job_assignments
)

select * from final
