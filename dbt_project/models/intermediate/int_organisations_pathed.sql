with

organisations as (
    select * from {{ ref('stg_hr__organisations') }}
),

-- Depth (root = 1) and the list of ids from the root down to each item, by walking the
-- tree from its roots (recursive and depth-guarded, see macros/walk_hierarchy.sql).
walked as (
    {{ walk_hierarchy('organisations', 'organisation_id') }}
),

pathed as (
    select
        organisations.organisation_id,
        organisations.name,
        organisations.short_name,
        organisations.description,
        organisations.framework_id,
        organisations.type_id,
        organisations.parent_id,
        walked.depth,
        walked.path
    from organisations
    inner join walked
        on walked.item_id = organisations.organisation_id
)

select * from pathed
