{{ config(materialized='table') }}

{#-
    Audience membership of this run against the last published one: one row per
    (audience, user) that is a member now or was before, with is_member / was_member and
    joined_at (docs/audiences.md, "From matched users to members").

    Every audience is evaluated at once, stage by stage (an audience's stage is one more than
    the highest stage its member_of leaves reference, so they are final before they are
    read), and in each stage level by level from the deepest node up: one group by per level
    folds every tree of every audience with the complement algebra of docs/audiences.md.
    The number of stages and levels is read from the rule tables when the model runs, so
    trees of any depth need no change here.
-#}

{%- set max_stage, max_depth = 0, 1 -%}
{%- if execute -%}
    {%- set shape = run_query(
        "select coalesce(max(a.stage), 0), coalesce(max(n.depth), 1) from "
        ~ ref('stg_rules__audiences') ~ " as a left join "
        ~ ref('stg_rules__audience_nodes') ~ " as n using (audience_id)"
    ) -%}
    {%- set max_stage, max_depth = shape.rows[0][0] | int, shape.rows[0][1] | int -%}
{%- endif %}

with

run_context as (
    select * from {{ ref('stg_learnops__run_context') }}
),

audiences as (
    select
        *,
        not is_broken and is_in_window and (add_members or remove_members) as is_evaluated
    from {{ ref('stg_rules__audiences') }}
),

nodes as (
    select nodes.*, audiences.stage
    from {{ ref('stg_rules__audience_nodes') }} as nodes
    inner join audiences on audiences.audience_id = nodes.audience_id
),

leaf_values as (
    select * from {{ ref('stg_rules__audience_node_values') }}
),

leaf_sets as (
    select * from {{ ref('int_audience_leaf_sets') }}
),

static_members as (
    select * from {{ ref('stg_rules__audience_static_members') }}
),

previous_members as (
    select * from {{ ref('stg_learnops__previous_audience_memberships') }}
),

-- deleted users are never members; everyone else may be (suspended users too)
eligible_users as (
    select user_id from {{ ref('dim_user') }}
    where status <> 'deleted'
),

members_before_stage_0 as (
    select null::varchar as audience_id, null::varchar as user_id
    where false
),

{% for stage in range(max_stage + 1) %}
-- ================================================================ stage {{ stage }}

stage_{{ stage }}_leaf_sets as materialized (
    select leaf_sets.node_id, leaf_sets.user_id
    from leaf_sets
    inner join nodes on nodes.node_id = leaf_sets.node_id
    where nodes.stage = {{ stage }}

    union all

    -- member_of / not_member_of: members of any listed audience (earlier stages only)
    select distinct nodes.node_id, earlier.user_id
    from nodes
    inner join leaf_values on leaf_values.node_id = nodes.node_id
    inner join members_before_stage_{{ stage }} as earlier
        on earlier.audience_id = leaf_values.value
    where nodes.stage = {{ stage }} and nodes.leaf_kind in ('member_of', 'not_member_of')
),

{% for depth in range(max_depth, 0, -1) %}
stage_{{ stage }}_depth_{{ depth }} as materialized (
    select leaf_sets.node_id, leaf_sets.user_id
    from stage_{{ stage }}_leaf_sets as leaf_sets
    inner join nodes on nodes.node_id = leaf_sets.node_id
    where nodes.depth = {{ depth }}
    {%- if depth < max_depth %}

    union all

    -- fold the level below: the stored set of each all / any / not node
    select child_counts.node_id, child_counts.user_id
    from (
        select
            children.parent_node_id as node_id,
            child_sets.user_id,
            count(*) filter (where not children.is_complement) as positives,
            count(*) filter (where children.is_complement) as complements
        from stage_{{ stage }}_depth_{{ depth + 1 }} as child_sets
        inner join nodes as children on children.node_id = child_sets.node_id
        group by children.parent_node_id, child_sets.user_id
    ) as child_counts
    inner join nodes as parents on parents.node_id = child_counts.node_id
    where
        case
            when parents.node_type = 'all' and parents.positive_children > 0
                then child_counts.positives = parents.positive_children
                    and child_counts.complements = 0
            when parents.node_type = 'any' and parents.complement_children > 0
                then child_counts.complements = parents.complement_children
                    and child_counts.positives = 0
            else true  -- not; all of complements only; any of positives only: the union
        end
    {%- endif %}
),
{% endfor %}

-- the users each audience's rules (or member list) select
stage_{{ stage }}_matched as (
    select audiences.audience_id, roots.user_id
    from audiences
    inner join nodes on nodes.node_id = audiences.root_node_id
    inner join stage_{{ stage }}_depth_1 as roots on roots.node_id = nodes.node_id
    where audiences.stage = {{ stage }} and not nodes.is_complement

    union all

    select audiences.audience_id, eligible_users.user_id
    from audiences
    inner join nodes on nodes.node_id = audiences.root_node_id
    cross join eligible_users
    where
        audiences.stage = {{ stage }}
        and nodes.is_complement
        and not exists (
            select 1 from stage_{{ stage }}_depth_1 as roots
            where roots.node_id = nodes.node_id and roots.user_id = eligible_users.user_id
        )

    union all

    select audiences.audience_id, static_members.user_id
    from audiences
    inner join static_members on static_members.audience_id = audiences.audience_id
    where audiences.stage = {{ stage }}
),

-- the window and the add / remove switches, against the previous members
stage_{{ stage }}_members as materialized (
    with
    stage_audiences as (
        select * from audiences
        where stage = {{ stage }}
    ),

    previous as (
        select previous_members.audience_id, previous_members.user_id
        from previous_members
        inner join stage_audiences on stage_audiences.audience_id = previous_members.audience_id
    ),

    candidates as (
        -- frozen (broken, outside the window, paused): the previous members stay
        select previous.audience_id, previous.user_id
        from previous
        inner join stage_audiences using (audience_id)
        where not stage_audiences.is_evaluated or not stage_audiences.remove_members

        union

        select matched.audience_id, matched.user_id
        from stage_{{ stage }}_matched as matched
        inner join stage_audiences using (audience_id)
        where stage_audiences.is_evaluated and stage_audiences.add_members

        union

        -- remove only: members who still match stay, nobody joins
        select previous.audience_id, previous.user_id
        from previous
        inner join stage_audiences using (audience_id)
        inner join stage_{{ stage }}_matched as matched using (audience_id, user_id)
        where stage_audiences.is_evaluated and not stage_audiences.add_members
    )

    select candidates.audience_id, candidates.user_id
    from candidates
    semi join eligible_users on eligible_users.user_id = candidates.user_id
),

members_before_stage_{{ stage + 1 }} as (
    select * from members_before_stage_{{ stage }}
    union all
    select * from stage_{{ stage }}_members
),
{% endfor %}

members as (
    select * from members_before_stage_{{ max_stage + 1 }}
),

final as (
    select
        coalesce(members.audience_id, previous_members.audience_id) as audience_id,
        coalesce(members.user_id, previous_members.user_id) as user_id,
        members.user_id is not null as is_member,
        previous_members.user_id is not null as was_member,
        coalesce(previous_members.joined_at, run_context.as_of) as joined_at
    from members
    full outer join previous_members
        on
            previous_members.audience_id = members.audience_id
            and previous_members.user_id = members.user_id
    cross join run_context
)

select * from final
