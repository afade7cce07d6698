{#-
    TEMPORARY, for developing the certification models until int_program_assignments (the
    program models) exists: one row per (certification, user) selected by a `users` route,
    with assigned_at = this run's as-of and due_at = the latest fixed due date of its routes.
    Deleted users are never assigned. int_certification_cycles reads this model through one
    import CTE (`assignments`), to be swapped for int_program_assignments; then delete this.
-#}

with

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

certifications as (
    select program_id from {{ ref('stg_rules__programs') }}
    where kind = 'certification'
),

routes as (
    select * from {{ ref('stg_rules__program_routes') }}
),

route_targets as (
    select * from {{ ref('stg_rules__program_route_targets') }}
),

users as (
    select user_id from {{ ref('dim_user') }}
    where status <> 'deleted'
),

selected as (
    select
        route_targets.program_id,
        route_targets.target_id as user_id,
        case when routes.due_kind = 'fixed' then routes.due_fixed_at end as due_at
    from route_targets
    inner join routes
        on routes.program_id = route_targets.program_id and routes.route_key = route_targets.route_key
    inner join certifications on certifications.program_id = route_targets.program_id
    inner join users on users.user_id = route_targets.target_id
    where routes.route_kind = 'users'
),

final as (
    select
        selected.program_id,
        selected.user_id,
        'certification' as kind,
        false as is_dismissed,
        run_context.as_of as assigned_at,
        max(selected.due_at) as due_at
    from selected
    cross join run_context
    group by all
)

select * from final
