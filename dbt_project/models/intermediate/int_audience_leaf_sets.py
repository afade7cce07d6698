"""The stored set of every leaf of every audience rule tree, as a bitset per leaf.

One row per leaf (member_of / not_member_of excepted: int_audience_member_sets folds them
stage by stage): node_id, audience_id, user_count, user_set. The sets come from the atoms of
int_audience_leaf_atoms (SQL finds their users) and from range look-ups for date and
course-completion leaves; flows/audience_sets.py says how they are encoded and combined.
"""

from flows import audience_sets


def model(dbt, session):
    dbt.config(materialized="table")
    relations = {
        "nodes": dbt.ref("stg_rules__audience_nodes"),
        "node_values": dbt.ref("stg_rules__audience_node_values"),
        "text_subjects": dbt.ref("int_audience_text_subjects"),
        "leaf_atoms": dbt.ref("int_audience_leaf_atoms"),
        "atom_members": dbt.ref("int_audience_atom_members"),
        "date_leaves": dbt.ref("int_audience_date_leaves"),
        "date_subjects": dbt.ref("int_audience_date_subjects"),
        "course_leaves": dbt.ref("int_audience_course_leaves"),
        "course_completions": dbt.ref("int_audience_course_completions"),
        "user_keys": dbt.ref("int_audience_user_keys"),
        "job_keys": dbt.ref("int_audience_job_keys"),
        "users": dbt.ref("dim_user"),
    }
    names = audience_sets.register(relations, prefix="leaf_sets")
    return audience_sets.evaluate_leaf_sets(session, audience_sets.LeafInputs(**names))
