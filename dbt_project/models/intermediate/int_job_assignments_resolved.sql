-- Read by dim_job_assignment and by the management walk: a table, so it is computed once.
{{ config(materialized='table') }}

with

job_assignments as (
    select * from {{ ref('stg_hr__job_assignments') }}
),

-- A user's first job is the earliest one learnops saw (SPEC §3.4): the smallest
-- first_seen_order (run ordinal, then file line), so it is stable across runs. job_id
-- breaks the (theoretical) tie so the choice never depends on row order.
-- job_key is an integer surrogate for this build only, so that the management walk joins
-- integers rather than (user_id, job_id) pairs.
jobs_ranked as (
    select
        *,
        row_number() over (order by user_id, job_id) as job_key,
        row_number() over (
            partition by user_id
            order by first_seen_order, job_id
        ) = 1 as is_first_job
    from job_assignments
),

first_jobs as (
    select
        user_id,
        job_id,
        job_key
    from jobs_ranked
    where is_first_job
),

-- A manager is a user plus one of their jobs: the job named in the feed when it is one of
-- the manager's live jobs, else the manager's first job (Totara's default).
manager_jobs_found as (
    select
        jobs_ranked.*,
        named_manager_jobs.job_id as named_manager_job_id,
        named_manager_jobs.job_key as named_manager_job_key,
        manager_first_jobs.job_id as first_manager_job_id,
        manager_first_jobs.job_key as first_manager_job_key
    from jobs_ranked
    left join jobs_ranked as named_manager_jobs
        on named_manager_jobs.user_id = jobs_ranked.manager_user_id
        and named_manager_jobs.job_id = jobs_ranked.manager_job_id
    left join first_jobs as manager_first_jobs
        on manager_first_jobs.user_id = jobs_ranked.manager_user_id
),

resolved as (
    select
        job_key,
        user_id,
        job_id,
        full_name,
        organisation_id,
        position_id,
        manager_user_id,
        coalesce(named_manager_job_id, first_manager_job_id) as manager_job_id,
        coalesce(named_manager_job_key, first_manager_job_key) as manager_job_key,
        manager_job_id as feed_manager_job_id,
        manager_user_id is not null
            and named_manager_job_id is null as is_manager_job_default,
        appraiser_user_id,
        start_date,
        end_date,
        is_first_job,
        first_seen_order
    from manager_jobs_found
)

select * from resolved
