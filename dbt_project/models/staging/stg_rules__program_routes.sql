with

source as (
    select * from {{ source('rules', 'program_route') }}
),

renamed as (
    select
        program_id,
        route_key,
        route_kind,
        include_children,
        manager_user_id,
        manager_job_id,
        manager_scope,
        due_kind,
        due_fixed_at,
        due_base,
        due_base_ref,
        due_months,
        due_seconds
    from source
)

select * from renamed
