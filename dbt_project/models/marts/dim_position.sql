with

positions as (
    select * from {{ ref('int_positions_pathed') }}
),

final as (
    select
        position_id,
        name,
        short_name,
        description,
        parent_id,
        depth,
        path,
        framework_id,
        type_id
    from positions
)

select * from final
