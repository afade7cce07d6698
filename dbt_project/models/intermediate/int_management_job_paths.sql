-- Read by both management bridges and by the cycle check: a table, so the walk runs once.
{{ config(materialized='table') }}

{#- Guard against a management cycle that slipped past the import's validation. -#}
{%- set max_depth = 50 -%}

with recursive

job_assignments as (
    select * from {{ ref('int_job_assignments_resolved') }}
),

users as (
    select * from {{ ref('stg_hr__users') }}
),

-- Deleted users take no part in the management chain, neither as reports nor as
-- managers: a chain through a deleted manager stops there. Suspended users stay.
chain_jobs as (
    select
        job_assignments.job_key as node_key,
        job_assignments.user_id,
        job_assignments.job_id,
        job_assignments.manager_user_id,
        job_assignments.manager_job_key
    from job_assignments
    inner join users
        on users.user_id = job_assignments.user_id
    where users.status <> 'deleted'
),

-- A manager who holds no live job still manages the people whose jobs name them: they
-- stand in the tree as one job-less node (job_id null), so those reports keep a manager.
-- Keys continue after the job keys.
jobless_managers as (
    select
        (select max(job_key) from job_assignments)
            + row_number() over (order by manager_user_id) as node_key,
        manager_user_id as user_id,
        cast(null as varchar) as job_id
    from (
        select distinct chain_jobs.manager_user_id
        from chain_jobs
        inner join users
            on users.user_id = chain_jobs.manager_user_id
        where chain_jobs.manager_job_key is null
            and users.status <> 'deleted'
    )
),

-- Each job has at most one manager job (SPEC §3.4 resolution), so the jobs form a forest.
-- A job whose manager is deleted, unknown or absent is a root.
edges as (
    select
        chain_jobs.node_key,
        chain_jobs.user_id,
        chain_jobs.job_id,
        coalesce(manager_jobs.node_key, jobless_managers.node_key) as manager_node_key
    from chain_jobs
    left join chain_jobs as manager_jobs
        on manager_jobs.node_key = chain_jobs.manager_job_key
    left join jobless_managers
        on jobless_managers.user_id = chain_jobs.manager_user_id
        and chain_jobs.manager_job_key is null

    union all

    select
        node_key,
        user_id,
        job_id,
        cast(null as bigint) as manager_node_key
    from jobless_managers
),

-- Walk down from the roots, carrying the node keys on the way (root first): integers keep
-- the lists small and the recursive join cheap at a million jobs. Nodes on a cycle are
-- never reached from a root; tests/assert_management_chains_reach_a_root.sql reports them.
walk as (
    select
        node_key,
        user_id,
        job_id,
        [node_key] as path,
        1 as depth
    from edges
    where manager_node_key is null

    union all

    select
        edges.node_key,
        edges.user_id,
        edges.job_id,
        list_append(walk.path, edges.node_key) as path,
        walk.depth + 1 as depth
    from walk
    inner join edges
        on edges.manager_node_key = walk.node_key
    where walk.depth < {{ max_depth }}
)

select * from walk
