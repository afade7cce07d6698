{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
    )
}}

{#-
    Append-only history: each run adds one row per user who joined or left an audience in
    it. A failed run never publishes its building copy, so it adds nothing; a re-run with
    the same inputs finds no change and adds nothing either.
-#}

with

evaluated as (
    select * from {{ ref('int_audience_memberships_evaluated') }}
),

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

final as (
    select
        evaluated.audience_id,
        evaluated.user_id,
        case when evaluated.is_member then 'joined' else 'left' end as event,
        run_context.run_id,
        run_context.as_of
    from evaluated
    cross join run_context
    where evaluated.is_member <> evaluated.was_member
)

select * from final
