with

organisations as (
    select * from {{ ref('int_organisations_pathed') }}
),

-- Every id on an item's path is one of its ancestors; the item itself is included with
-- depth_below 0, so "include children" is a plain join on ancestor_id (whole subtree).
ancestry as (
    select
        unnest(path) as ancestor_id,
        organisation_id as descendant_id,
        cast(depth - generate_subscripts(path, 1) as integer) as depth_below
    from organisations
)

select * from ancestry
