{#-
    One row per user who is not deleted: the display columns every report mart shares (full
    name, the first job's organisation and manager). Display only: report scope joins every
    job of a user (flows/reports/scope.py), never just this one.
-#}

-- a table: four report marts read it
{{ config(materialized='table') }}

with

users as (
    select * from {{ ref('dim_user') }}
    where status <> 'deleted'
),

first_jobs as (
    select user_id, organisation_id, manager_user_id
    from {{ ref('dim_job_assignment') }}
    where is_first_job
),

organisations as (
    select organisation_id, name from {{ ref('dim_organisation') }}
),

all_users as (
    select user_id, first_name, last_name from {{ ref('dim_user') }}
),

final as (
    select
        users.user_id,
        users.username,
        trim(coalesce(users.first_name, '') || ' ' || coalesce(users.last_name, '')) as full_name,
        users.email,
        users.status,
        first_jobs.organisation_id,
        organisations.name as organisation_name,
        first_jobs.manager_user_id,
        trim(coalesce(managers.first_name, '') || ' ' || coalesce(managers.last_name, ''))
            as manager_name
    from users
    left join first_jobs
        on first_jobs.user_id = users.user_id
    left join organisations
        on organisations.organisation_id = first_jobs.organisation_id
    left join all_users as managers
        on managers.user_id = first_jobs.manager_user_id
)

select * from final
