{{ config(materialized='table') }}

{#-
    An integer key per live job of this run, for the job-space sets of negative job-item
    leaves (flows/audience_sets.py): "users with a job whose title is not X" is the users
    whose item-jobs are not all in the set of jobs titled X. Keys are numbered in (user, job)
    order each run and never stored: unlike user keys they need not be stable. Each job
    carries its user's key and the items it has, and the fields the text leaves read.
-#}

with

user_keys as (
    select * from {{ ref('int_audience_user_keys') }}
),

jobs as (
    select * from {{ ref('dim_job_assignment') }}
),

final as (
    select
        row_number() over (order by user_keys.user_key, jobs.job_id) - 1 as job_key,
        user_keys.user_key,
        jobs.user_id,
        jobs.job_id,
        jobs.full_name,
        jobs.organisation_id,
        jobs.position_id,
        jobs.organisation_id is not null as has_organisation,
        jobs.position_id is not null as has_position
    from jobs
    inner join user_keys on user_keys.user_id = jobs.user_id
)

select * from final
