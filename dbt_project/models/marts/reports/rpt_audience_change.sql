{{ config(materialized='view') }}

{#-
    One row per user who joined or left an audience, per run (fct_audience_membership_event
    with names). The subject of each row is user_id; "changes of the last week" is a report
    filter on as_of (within_last_days: 7).

    A view: the event history only grows (a first run at 1M users can record hundreds of
    millions of joins), and a report reads a few days of it, a filter DuckDB pushes down.
-#}

with

events as (
    select * from {{ ref('fct_audience_membership_event') }}
),

audiences as (
    select audience_id, name from {{ ref('dim_audience') }}
),

learners as (
    select * from {{ ref('int_report_learners') }}
),

final as (
    select
        events.audience_id,
        audiences.name as audience_name,
        events.user_id,
        learners.username,
        learners.full_name,
        learners.organisation_id,
        learners.organisation_name,
        events.event,
        events.run_id,
        events.as_of
    from events
    inner join learners
        on learners.user_id = events.user_id
    left join audiences
        on audiences.audience_id = events.audience_id
)

select * from final
