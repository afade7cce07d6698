with

audiences as (
    select * from {{ ref('stg_rules__audiences') }}
),

-- counted from the sets, not by scanning fct_audience_membership
member_counts as (
    select audience_id, user_count as member_count
    from {{ ref('int_audience_member_sets') }}
),

final as (
    select
        audiences.audience_id,
        audiences.name,
        audiences.kind,
        audiences.stage,
        audiences.active_from,
        audiences.active_until,
        audiences.is_in_window,
        audiences.add_members,
        audiences.remove_members,
        audiences.is_broken,
        audiences.broken_reason,
        audiences.broken_since_run_id,
        coalesce(member_counts.member_count, 0) as member_count
    from audiences
    left join member_counts on member_counts.audience_id = audiences.audience_id
)

select * from final
