{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        full_refresh=false,
    )
}}

{#-
    Append-only history: each run adds one row per user who joined or left an audience in
    it. A failed run never publishes its building copy, so it adds nothing; a re-run with
    the same inputs finds no change and adds nothing either.
-#}

with

changes as (
    select * from {{ ref('int_audience_membership_changes') }}
),

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

final as (
    select
        changes.audience_id,
        changes.user_id,
        changes.event,
        run_context.run_id,
        run_context.as_of
    from changes
    cross join run_context
)

select * from final
