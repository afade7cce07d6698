{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        full_refresh=false,
        pre_hook="
            {% if is_incremental() %}
            delete from {{ this }} as members
            using {{ ref('int_audience_membership_changes') }} as changes
            where
                changes.event = 'left'
                and changes.audience_id = members.audience_id
                and changes.user_id = members.user_id
            {% endif %}
        ",
    )
}}

{#-
    Kept up to date by this run's changes rather than rebuilt: the users who left are deleted
    (pre-hook), the users who joined are appended with this run's as-of. Members who stay
    keep their row, and so their joined_at. It is never fully refreshed, because the member
    sets it mirrors (int_audience_member_sets) carry over from run to run as well.
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
        run_context.as_of as joined_at
    from changes
    cross join run_context
    where changes.event = 'joined'
)

select * from final
