{#-
    Walk a parent/child tree from its roots down and return one row per reachable item:
    item_id, path (list of ids from the root to the item) and depth (root = 1).

    `items` is a relation or CTE with the columns `id_column` and `parent_column`. An item
    whose parent is not among `items` counts as a root, so its own row still appears (a
    relationships test on the parent column reports the dangling parent). Items on a parent
    cycle are never reached from a root and so are missing; a relationships test from the
    staging model to the dim reports them. `max_depth` guards against runaway recursion.

    Renders a complete query (its own `with recursive`), to be used as a CTE body.
-#}
{% macro walk_hierarchy(items, id_column, parent_column='parent_id', max_depth=50) %}
    with recursive walk as (
        select
            roots.{{ id_column }} as item_id,
            [roots.{{ id_column }}] as path,
            1 as depth
        from {{ items }} as roots
        where roots.{{ parent_column }} is null
            or not exists (
                select 1
                from {{ items }} as parents
                where parents.{{ id_column }} = roots.{{ parent_column }}
            )

        union all

        select
            children.{{ id_column }} as item_id,
            list_append(walk.path, children.{{ id_column }}) as path,
            walk.depth + 1 as depth
        from walk
        inner join {{ items }} as children
            on children.{{ parent_column }} = walk.item_id
        where walk.depth < {{ max_depth }}
    )

    select item_id, path, depth from walk
{% endmacro %}
