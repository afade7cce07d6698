{{ config(materialized='table') }}

{#-
    Which atoms make up each leaf's stored set (docs/audiences.md, "Leaf semantics"): the
    leaf's set is the union of its atoms' users (int_audience_atom_members). An atom several
    leaves name is found once: users whose field has a value, users with a job whose item has
    a value, users with a job in an organisation's (position's) subtree, managers with
    direct reports. Leaves whose set does not split into shared atoms get an atom of their
    own. An atom's members are user keys, except for the own atom of a negative job-item
    leaf ("a job whose title is not X"), whose members are the keys of the jobs that match
    its positive twin (member_space 'job'): int_audience_leaf_sets turns those into users. Date and course-completion leaves are range look-ups in int_audience_leaf_sets,
    member_of leaves are folded in int_audience_member_sets: neither has atoms.

    Rule values arrive as rows of stg_rules__audience_node_values and are only ever joined
    or compared: nothing an admin writes becomes SQL text.
-#}

with

leaves as (
    select * from {{ ref('stg_rules__audience_nodes') }}
    where
        node_type = 'leaf'
        and leaf_kind not in ('member_of', 'not_member_of', 'date_field', 'course_completion')
),

leaf_values as (
    select * from {{ ref('stg_rules__audience_node_values') }}
),

classified as (
    select
        *,
        case
            -- a user has one value per field: the positive twin is the union of the values
            when leaf_kind = 'user_field' and match_operator = 'equals' then 'value'
            -- "exists a job whose item has one of the values": again a union of values
            -- (the negative operators need all of a user's jobs, so they are per leaf)
            when
                leaf_kind in (
                    'job_title', 'organisation_type', 'organisation_custom_field',
                    'position_type', 'position_custom_field'
                )
                and match_operator = 'equals'
                and not is_complement
                then 'value'
            when leaf_kind in ('organisation', 'position') then 'subtree'
            when leaf_kind = 'has_direct_reports' then 'direct_reports'
            else 'leaf'
        end as atom_kind
    from leaves
),

spaced as (
    select
        *,
        case
            when
                atom_kind = 'leaf'
                and is_complement
                and leaf_kind in (
                    'job_title', 'organisation_type', 'organisation_custom_field',
                    'position_type', 'position_custom_field'
                )
                then 'job'
            else 'user'
        end as member_space
    from classified
),

atom_refs as (
    select
        spaced.node_id,
        spaced.atom_kind,
        spaced.leaf_kind,
        coalesce(spaced.field_name, '') as field_name,
        spaced.is_custom_field,
        leaf_values.value_lower as atom_value,
        false as include_children,
        spaced.member_space
    from spaced
    inner join leaf_values on leaf_values.node_id = spaced.node_id
    where spaced.atom_kind = 'value'

    union all

    select
        spaced.node_id,
        spaced.atom_kind,
        spaced.leaf_kind,
        '',
        false,
        leaf_values.value,
        coalesce(spaced.include_children, false),
        spaced.member_space
    from spaced
    inner join leaf_values on leaf_values.node_id = spaced.node_id
    where spaced.atom_kind = 'subtree'

    union all

    select node_id, atom_kind, leaf_kind, '', false, '', false, member_space
    from spaced
    where atom_kind = 'direct_reports'

    union all

    select node_id, atom_kind, leaf_kind, '', false, node_id::varchar, false, member_space
    from spaced
    where atom_kind = 'leaf'
),

final as (
    select
        node_id,
        dense_rank() over (
            order by atom_kind, leaf_kind, field_name, is_custom_field, atom_value, include_children
        ) - 1 as atom_id,
        atom_kind,
        leaf_kind,
        field_name,
        is_custom_field,
        atom_value,
        include_children,
        member_space
    from atom_refs
)

select * from final
