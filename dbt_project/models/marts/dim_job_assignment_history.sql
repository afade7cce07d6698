-- A view: a rename of the snapshot table dbt keeps in the `snapshots` schema; copying it
-- into a table on every run would double its storage and cost a second per million rows.
{{ config(materialized='view') }}

with

job_assignment_versions as (
    select * from {{ ref('snp_hr__job_assignments') }}
),

-- Validity windows on the runs' as-of instants: in force from valid_from (inclusive) to
-- valid_to (exclusive; null = still current). A window that opened and closed at the same
-- instant (two runs with one as-of) was never in force, so it is left out.
windows as (
    select
        user_id,
        job_id,
        full_name,
        organisation_id,
        position_id,
        manager_user_id,
        manager_job_id,
        appraiser_user_id,
        start_date,
        end_date,
        dbt_valid_from as valid_from,
        dbt_valid_to as valid_to,
        dbt_valid_to is null as is_current
    from job_assignment_versions
    where dbt_valid_to is null
        or dbt_valid_to > dbt_valid_from
)

select * from windows
