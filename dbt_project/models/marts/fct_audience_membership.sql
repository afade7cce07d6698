with

evaluated as (
    select * from {{ ref('int_audience_memberships_evaluated') }}
),

final as (
    select
        audience_id,
        user_id,
        joined_at
    from evaluated
    where is_member
)

select * from final
