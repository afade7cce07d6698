-- fct_audience_membership is kept up to date from each run's joins and leaves
-- (int_audience_membership_changes), not rebuilt: every audience must hold exactly as many
-- rows as its member set has users. A duplicate, a stale or a missing row shows here.
with

counted as (
    select audience_id, count(*) as member_rows
    from {{ ref('fct_audience_membership') }}
    group by audience_id
),

member_sets as (
    select audience_id, user_count
    from {{ ref('int_audience_member_sets') }}
    where user_count > 0
)

select
    coalesce(counted.audience_id, member_sets.audience_id) as audience_id,
    counted.member_rows,
    member_sets.user_count
from counted
full outer join member_sets on member_sets.audience_id = counted.audience_id
where counted.member_rows is distinct from member_sets.user_count
