-- A view: at 1M users these are 13M rows, cheap to derive from the 1.1M job paths on read
-- (about a second for a full scan) and costly to write on every run. The user-level
-- bridge, which audiences and reports read all the time, is a table.
{{ config(materialized='view') }}

with

job_paths as (
    select * from {{ ref('int_management_job_paths') }}
),

-- Every node above a job on its path is one of its managers, at the distance along the
-- path (1 = direct). The jobs form a forest (one manager job per job), so each (manager
-- job, report job) pair has exactly one path and its depth is the smallest by construction.
path_steps as (
    select
        unnest(path) as manager_node_key,
        user_id as report_user_id,
        job_id as report_job_id,
        depth - generate_subscripts(path, 1) as depth
    from job_paths
),

manager_report_jobs as (
    select
        managers.user_id as manager_user_id,
        -- null when the manager holds no live job (see int_management_job_paths)
        managers.job_id as manager_job_id,
        path_steps.report_user_id,
        path_steps.report_job_id,
        cast(path_steps.depth as integer) as depth
    from path_steps
    inner join job_paths as managers
        on managers.node_key = path_steps.manager_node_key
    -- depth 0 is the job itself
    where path_steps.depth >= 1
)

select * from manager_report_jobs
