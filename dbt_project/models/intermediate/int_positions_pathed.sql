with

positions as (
    select * from {{ ref('stg_hr__positions') }}
),

-- Depth (root = 1) and the list of ids from the root down to each item, by walking the
-- tree from its roots (recursive and depth-guarded, see macros/walk_hierarchy.sql).
walked as (
    {{ walk_hierarchy('positions', 'position_id') }}
),

pathed as (
    select
        positions.position_id,
        positions.name,
        positions.short_name,
        positions.description,
        positions.framework_id,
        positions.type_id,
        positions.parent_id,
        walked.depth,
        walked.path
    from positions
    inner join walked
        on walked.item_id = positions.position_id
)

select * from pathed
