-- Every live job of a user who is not deleted must sit in the management tree. A job that
-- is missing is on a management cycle (or more than 50 levels deep): the import should
-- have rejected it, and the closure would silently leave it out.
with

job_assignments as (
    select * from {{ ref('int_job_assignments_resolved') }}
),

users as (
    select * from {{ ref('stg_hr__users') }}
),

job_paths as (
    select * from {{ ref('int_management_job_paths') }}
),

unreached_jobs as (
    select
        job_assignments.user_id,
        job_assignments.job_id,
        job_assignments.manager_user_id,
        job_assignments.manager_job_id
    from job_assignments
    inner join users
        on users.user_id = job_assignments.user_id
    left join job_paths
        on job_paths.node_key = job_assignments.job_key
    where users.status <> 'deleted'
        and job_paths.node_key is null
)

select * from unreached_jobs
