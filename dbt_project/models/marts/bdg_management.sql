with

job_paths as (
    select * from {{ ref('int_management_job_paths') }}
),

-- Every node above a job on its path is one of its managers, at the distance along the
-- path (1 = direct report).
path_steps as (
    select
        unnest(path) as manager_node_key,
        user_id as report_user_id,
        depth - generate_subscripts(path, 1) as depth
    from job_paths
),

manager_report_steps as (
    select
        managers.user_id as manager_user_id,
        path_steps.report_user_id,
        path_steps.depth
    from path_steps
    inner join job_paths as managers
        on managers.node_key = path_steps.manager_node_key
    where path_steps.depth >= 1
),

-- A person manages another when one of their jobs is above one of the other's jobs (the
-- job paths, as Totara's managerjapath); over several jobs the shortest chain counts.
-- Through two jobs someone can sit above their own other job; nobody is their own
-- manager, so such pairs are dropped.
manager_report_pairs as (
    select
        manager_user_id,
        report_user_id,
        min(depth) as depth
    from manager_report_steps
    where manager_user_id <> report_user_id
    group by manager_user_id, report_user_id
),

final as (
    select
        manager_user_id,
        report_user_id,
        cast(depth as integer) as depth,
        depth = 1 as is_direct_report
    from manager_report_pairs
)

select * from final
