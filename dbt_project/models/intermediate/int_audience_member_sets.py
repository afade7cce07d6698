"""Each audience's members, this run and at the last published run, as bitsets.

One row per audience of the rules, plus one per audience gone from the rules that still had
members: audience_id, user_count, user_set, previous_user_set. The previous members are this
table as the last published run left it (the building copy starts as the published file);
on the first run after an upgrade they are read once from fct_audience_membership.
docs/audiences.md, "From matched users to members", says how members follow from the rules.
"""

from flows import audience_sets


def model(dbt, session):
    dbt.config(materialized="table")
    relations = {
        "audiences": dbt.ref("stg_rules__audiences"),
        "nodes": dbt.ref("stg_rules__audience_nodes"),
        "node_values": dbt.ref("stg_rules__audience_node_values"),
        "leaf_sets": dbt.ref("int_audience_leaf_sets"),
        "static_members": dbt.ref("stg_rules__audience_static_members"),
        "user_keys": dbt.ref("int_audience_user_keys"),
        "users": dbt.ref("dim_user"),
    }
    names = audience_sets.register(relations, prefix="member_sets")
    previous = audience_sets.previous_member_sets(
        session, dbt.this.schema, dbt.this.identifier, names["user_keys"]
    )
    inputs = audience_sets.MemberInputs(**names, previous=previous)
    return audience_sets.evaluate_member_sets(session, inputs)
