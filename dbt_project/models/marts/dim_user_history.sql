-- A view: a rename of the snapshot table dbt keeps in the `snapshots` schema; copying it
-- into a table on every run would double its storage and cost a second per million rows.
{{ config(materialized='view') }}

with

user_versions as (
    select * from {{ ref('snp_hr__users') }}
),

-- Validity windows on the runs' as-of instants: in force from valid_from (inclusive) to
-- valid_to (exclusive; null = still current). A window that opened and closed at the same
-- instant (two runs with one as-of) was never in force, so it is left out.
windows as (
    select
        user_id,
        username,
        email,
        first_name,
        last_name,
        status,
        city,
        country,
        lang,
        timezone,
        institution,
        department,
        is_suspended,
        email_stop,
        removed_reason,
        dbt_valid_from as valid_from,
        dbt_valid_to as valid_to,
        dbt_valid_to is null as is_current
    from user_versions
    where dbt_valid_to is null
        or dbt_valid_to > dbt_valid_from
)

select * from windows
